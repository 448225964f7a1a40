package onnx

import (
	"fmt"
	"math"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// Exporters write x.view(x.size(0), -1) as a small computation on the input's shape, Shape -> Gather -> Unsqueeze
// -> Concat -> Reshape, rather than as a constant target. The walker evaluates such computations at import time
// against the shapes of the chain's values, with the batch dimension kept symbolic, so that the Reshape sees a
// target such as [batch, -1] and becomes the flatten it already supports. Only integer vectors of a few elements
// are computed; anything that does not evaluate is refused naming its node.

// Symbolic elements of a computed shape: the batch dimension, and a dimension the graph does not declare.
const (
	symBatch   int64 = math.MinInt64
	symUnknown int64 = math.MinInt64 + 1
)

// maxShapeLen bounds a computed shape, as ints bounds a constant one.
const maxShapeLen = 8

// shapeValue is an int64 scalar or vector computed from shapes.
type shapeValue struct {
	v      []int64
	scalar bool
}

// usesData says whether a node's input counts as reading the data chain: a Shape node reads only its input's shape.
func usesData(op string) bool { return op != "Shape" }

func isComputed(computed map[string]shapeValue, name string) bool {
	_, ok := computed[name]
	return ok
}

// targetString shows a computed shape with N for the batch and ? for an undeclared dimension.
func targetString(v []int64) string {
	s := make([]string, len(v))
	for i, d := range v {
		switch d {
		case symBatch:
			s[i] = "N"
		case symUnknown:
			s[i] = "?"
		default:
			s[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// intValue returns a computed shape or an int64 constant.
func (w *walker) intValue(name, id, op string) (shapeValue, error) {
	if v, ok := w.computed[name]; ok {
		return v, nil
	}
	t := w.consts[name]
	if t == nil {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op,
			"reads %s, which is neither a constant nor computed from a shape; perceptron evaluates only shape arithmetic of a flatten", quote(name))
	}
	d, _, err := shape(t)
	if err != nil {
		return shapeValue{}, withNode(err, id, op)
	}
	v, err := ints(t)
	if err != nil {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "%v", err)
	}
	if len(d) > 1 {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "tensor %s has %d dimensions; want a scalar or a vector", quote(name), len(d))
	}
	return shapeValue{v: v, scalar: len(d) == 0}, nil
}

// constInts returns a constant int64 input, such as axes or indices.
func (w *walker) constInts(name, id, op, what string) ([]int64, bool, error) {
	t := w.consts[name]
	if t == nil {
		return nil, false, nodeErr(ErrUnsupported, id, op, "its %s %s are not a constant", what, quote(name))
	}
	v, err := w.intValue(name, id, op)
	return v.v, v.scalar, err
}

// shapeStep evaluates one shape operator.
func (w *walker) shapeStep(n *onnxpb.NodeProto, id, op string) error {
	fail := func(kind error, format string, args ...any) error { return nodeErr(kind, id, op, format, args...) }
	in, out := n.GetInput(), n.GetOutput()
	if len(out) != 1 || out[0] == "" || len(in) == 0 || in[0] == "" {
		return fail(ErrMalformed, "want one output and a first input")
	}
	var v shapeValue
	var err error
	switch op {
	case "Shape":
		v, err = w.shapeOf(n, id, op)
	case "Gather":
		v, err = w.gather(n, id, op)
	case "Unsqueeze", "Squeeze":
		v, err = w.squeeze(n, id, op)
	case "Concat":
		v, err = w.concat(n, id, op)
	case "Cast":
		v, err = w.cast(n, id, op)
	case "Slice":
		v, err = w.slice(n, id, op)
	}
	if err != nil {
		return err
	}
	if len(v.v) > maxShapeLen {
		return fail(ErrUnsupported, "computes %d values; a shape has at most %d", len(v.v), maxShapeLen)
	}
	w.computed[out[0]] = v
	return nil
}

func (w *walker) shapeOf(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"start": attrInt, "end": attrInt})
	if err != nil {
		return shapeValue{}, err
	}
	name := n.GetInput()[0]
	dims, ok := w.shapes[name]
	switch {
	case len(n.GetInput()) != 1:
		return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(n.GetInput()))
	case !ok:
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "reads %s, which is not a value of the chain of layers from the input", quote(name))
	case dims == nil:
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "the shape of %s is not known: declare the input's shape", quote(name))
	}
	v := make([]int64, len(dims))
	for i, d := range dims {
		switch {
		case i == 0:
			v[i] = symBatch // served batches have any size, whatever the file declares
		case d < 0:
			v[i] = symUnknown
		default:
			v[i] = d
		}
	}
	start, end := clampRange(intAttr(attrs, "start", 0), intAttr(attrs, "end", int64(len(v))), len(v))
	return shapeValue{v: v[start:end]}, nil
}

// clampRange applies ONNX's rules for start and end of a slice of n elements: negative counts from the end, then
// both are clamped to [0, n], and an empty range is allowed.
func clampRange(start, end int64, n int) (int, int) {
	clamp := func(i int64) int {
		if i < 0 {
			i += int64(n)
		}
		return int(min(max(i, 0), int64(n)))
	}
	s, e := clamp(start), clamp(end)
	return s, max(s, e)
}

func (w *walker) gather(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"axis": attrInt})
	if err != nil {
		return shapeValue{}, err
	}
	in := n.GetInput()
	if len(in) != 2 {
		return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(in))
	}
	data, err := w.intValue(in[0], id, op)
	if err != nil {
		return shapeValue{}, err
	}
	if axis := intAttr(attrs, "axis", 0); data.scalar || axis != 0 && axis != -1 {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "perceptron gathers from a vector of dimensions, along axis 0")
	}
	idx, scalar, err := w.constInts(in[1], id, op, "indices")
	if err != nil {
		return shapeValue{}, err
	}
	v := make([]int64, len(idx))
	for i, j := range idx {
		if j < 0 {
			j += int64(len(data.v))
		}
		if j < 0 || j >= int64(len(data.v)) {
			return shapeValue{}, nodeErr(ErrMalformed, id, op, "index %d is outside a vector of %d values", idx[i], len(data.v))
		}
		v[i] = data.v[j]
	}
	return shapeValue{v: v, scalar: scalar}, nil
}

// squeeze turns a scalar into a vector of one value (Unsqueeze) or back (Squeeze), the only reshaping of a shape
// an exporter writes for a flatten.
func (w *walker) squeeze(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	in := n.GetInput()
	var axes []int64
	if w.opset < 13 {
		attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"axes": onnxpb.AttributeProto_INTS})
		if err != nil {
			return shapeValue{}, err
		}
		if a := attrs["axes"]; a != nil {
			axes = a.GetInts()
		}
	} else {
		if _, err := w.attrs(n, id, op, nil); err != nil {
			return shapeValue{}, err
		}
		if len(in) > 1 && in[1] != "" {
			var err error
			if axes, _, err = w.constInts(in[1], id, op, "axes"); err != nil {
				return shapeValue{}, err
			}
		}
	}
	if len(in) > 2 || w.opset < 13 && len(in) > 1 {
		return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(in))
	}
	x, err := w.intValue(in[0], id, op)
	if err != nil {
		return shapeValue{}, err
	}
	axisZero := len(axes) == 1 && (axes[0] == 0 || axes[0] == -1)
	switch {
	case op == "Unsqueeze" && x.scalar && axisZero:
		return shapeValue{v: x.v}, nil
	case op == "Squeeze" && !x.scalar && len(x.v) == 1 && (axisZero || len(axes) == 0):
		return shapeValue{v: x.v, scalar: true}, nil
	}
	return shapeValue{}, nodeErr(ErrUnsupported, id, op, "axes %v of a %s; perceptron evaluates only a scalar made a vector of one value and back",
		axes, map[bool]string{true: "scalar", false: "vector"}[x.scalar])
}

func (w *walker) concat(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"axis": attrInt})
	if err != nil {
		return shapeValue{}, err
	}
	if axis := intAttr(attrs, "axis", 0); axis != 0 && axis != -1 {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "attribute axis=%d; shapes are vectors, axis=0", axis)
	}
	var v []int64
	for _, name := range n.GetInput() {
		x, err := w.intValue(name, id, op)
		if err != nil {
			return shapeValue{}, err
		}
		if x.scalar {
			return shapeValue{}, nodeErr(ErrUnsupported, id, op, "input %s is a scalar; Concat joins vectors", quote(name))
		}
		if len(v)+len(x.v) > maxShapeLen {
			return shapeValue{}, nodeErr(ErrUnsupported, id, op, "joins more than %d values; a shape has at most %d", maxShapeLen, maxShapeLen)
		}
		v = append(v, x.v...)
	}
	return shapeValue{v: v}, nil
}

func (w *walker) cast(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"to": attrInt, "saturate": attrInt})
	if err != nil {
		return shapeValue{}, err
	}
	if len(n.GetInput()) != 1 {
		return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(n.GetInput()))
	}
	if to := onnxpb.TensorProto_DataType(intAttr(attrs, "to", 0)); to != onnxpb.TensorProto_INT64 {
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "casts to %s; perceptron evaluates shapes as INT64 only", to)
	}
	return w.intValue(n.GetInput()[0], id, op)
}

func (w *walker) slice(n *onnxpb.NodeProto, id, op string) (shapeValue, error) {
	in := n.GetInput()
	var starts, ends, axes, steps []int64
	if w.opset < 10 {
		attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{
			"starts": onnxpb.AttributeProto_INTS, "ends": onnxpb.AttributeProto_INTS, "axes": onnxpb.AttributeProto_INTS})
		if err != nil {
			return shapeValue{}, err
		}
		if len(in) != 1 {
			return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(in))
		}
		starts, ends = attrs["starts"].GetInts(), attrs["ends"].GetInts()
		if a := attrs["axes"]; a != nil {
			axes = a.GetInts()
		}
	} else {
		if _, err := w.attrs(n, id, op, nil); err != nil {
			return shapeValue{}, err
		}
		if len(in) < 3 || len(in) > 5 {
			return shapeValue{}, nodeErr(ErrMalformed, id, op, "has %d inputs", len(in))
		}
		lists := []*[]int64{&starts, &ends, &axes, &steps}
		for i, name := range in[1:] {
			if name == "" {
				continue
			}
			var err error
			if *lists[i], _, err = w.constInts(name, id, op, [...]string{"starts", "ends", "axes", "steps"}[i]); err != nil {
				return shapeValue{}, err
			}
		}
	}
	x, err := w.intValue(in[0], id, op)
	if err != nil {
		return shapeValue{}, err
	}
	switch {
	case x.scalar || len(starts) != 1 || len(ends) != 1:
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "perceptron evaluates a slice of one range of a vector of dimensions")
	case len(axes) > 1 || len(axes) == 1 && axes[0] != 0 && axes[0] != -1:
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "axes %v; shapes are vectors, axis 0", axes)
	case len(steps) > 1 || len(steps) == 1 && steps[0] != 1:
		return shapeValue{}, nodeErr(ErrUnsupported, id, op, "steps %v; perceptron evaluates slices of step 1", steps)
	}
	s, e := clampRange(starts[0], ends[0], len(x.v))
	return shapeValue{v: x.v[s:e]}, nil
}
