package onnx

import (
	"math"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// The operators an MLP graph may hold, one method of the walker each: what each accepts, and the node it names
// when it refuses one.

// constant records a Constant node's value.
func (w *walker) constant(n *onnxpb.NodeProto, id, op string) error {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{
		"value": onnxpb.AttributeProto_TENSOR, "value_float": attrFloat, "value_floats": onnxpb.AttributeProto_FLOATS,
		"value_int": attrInt, "value_ints": onnxpb.AttributeProto_INTS,
	})
	if err != nil {
		return err
	}
	if len(attrs) != 1 || len(n.GetOutput()) != 1 || len(n.GetInput()) != 0 {
		return nodeErr(ErrMalformed, id, op, "want one value attribute, no input and one output")
	}
	var t *onnxpb.TensorProto
	for name, a := range attrs {
		switch name {
		case "value":
			t = a.GetT()
		case "value_float":
			t = &onnxpb.TensorProto{DataType: ptr(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{a.GetF()}}
		case "value_floats":
			t = &onnxpb.TensorProto{DataType: ptr(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{int64(len(a.GetFloats()))}, FloatData: a.GetFloats()}
		case "value_int":
			t = &onnxpb.TensorProto{DataType: ptr(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{a.GetI()}}
		case "value_ints":
			t = &onnxpb.TensorProto{DataType: ptr(int32(onnxpb.TensorProto_INT64)), Dims: []int64{int64(len(a.GetInts()))}, Int64Data: a.GetInts()}
		}
	}
	if t == nil {
		return nodeErr(ErrMalformed, id, op, "attribute \"value\" holds no tensor")
	}
	w.consts[n.GetOutput()[0]] = t
	return nil
}

func (w *walker) dropout(n *onnxpb.NodeProto, id, op string) error {
	if _, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"ratio": attrFloat, "seed": attrInt}); err != nil {
		return err
	}
	if in := n.GetInput(); len(in) > 2 && in[2] != "" {
		training, err := boolean(w.consts[in[2]])
		if err != nil {
			return nodeErr(ErrUnsupported, id, op, "training_mode: %v", err)
		}
		if training {
			return nodeErr(ErrUnsupported, id, op, "training_mode is true; export the model in inference mode (model.eval())")
		}
	}
	return nil
}

func (w *walker) flatten(n *onnxpb.NodeProto, id, op string) error {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"axis": attrInt})
	if err != nil {
		return err
	}
	axis := intAttr(attrs, "axis", 1)
	if axis < 0 && w.dims != nil {
		axis += int64(len(w.dims))
	}
	if axis != 1 {
		return nodeErr(ErrUnsupported, id, op, "attribute axis=%d: perceptron flattens each example, axis=1", intAttr(attrs, "axis", 1))
	}
	w.dims = flattened(w.dims)
	return nil
}

// flattened is the shape [N, product of the rest] of a batch of examples; nil stays unknown.
func flattened(dims []int64) []int64 {
	if dims == nil {
		return nil
	}
	features := int64(1)
	for _, d := range dims[1:] {
		if d < 0 {
			features = -1
			break
		}
		features *= d
	}
	return []int64{dims[0], features}
}

func (w *walker) reshape(n *onnxpb.NodeProto, id, op string) error {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"allowzero": attrInt})
	if err != nil {
		return err
	}
	in := n.GetInput()
	var target []int64
	switch {
	case len(in) == 2 && w.consts[in[1]] != nil:
		if target, err = ints(w.consts[in[1]]); err != nil {
			return nodeErr(ErrUnsupported, id, op, "target shape: %v", err)
		}
	case len(in) == 2 && isComputed(w.computed, in[1]):
		target = w.computed[in[1]].v
	default:
		return nodeErr(ErrUnsupported, id, op, "the target shape must be a constant or computed from the input's shape")
	}
	shown := targetString(target)
	fail := func() error {
		return nodeErr(ErrUnsupported, id, op, "reshapes %s to %s; perceptron's layers take [N, features]: reshape to [-1, features], [N, -1] or use Flatten",
			shapeString(w.dims), shown)
	}
	if len(target) != 2 || intAttr(attrs, "allowzero", 0) != 0 && (target[0] == 0 || target[1] == 0) {
		return fail()
	}
	if target[0] == symBatch { // the batch dimension, as Shape computed it: kept, like 0 without allowzero
		target = []int64{0, target[1]}
	}
	flat := flattened(w.dims)
	batch, features := int64(-1), int64(-1)
	if flat != nil {
		batch, features = flat[0], flat[1]
	}
	switch {
	case target[0] == 0 || target[0] == -1 || target[0] > 0 && target[0] == batch:
	default:
		return fail()
	}
	switch {
	case target[1] > 0 && (features < 0 || features == target[1]):
		features = target[1]
	case target[1] == -1 && target[0] != -1:
	case target[1] == 0 && w.dims != nil && len(w.dims) == 2:
	default:
		return fail()
	}
	w.dims = []int64{batch, features}
	return nil
}

// linear adds the layer of a Gemm (y = alpha·A'·B' + beta·C) or a MatMul (y = A·B), with the data as A and
// constant weights: the layer's W is alpha·B' and its bias beta·C.
func (w *walker) linear(n *onnxpb.NodeProto, id, op string) error {
	fail := func(kind error, format string, args ...any) error { return nodeErr(kind, id, op, format, args...) }
	var attrs map[string]*onnxpb.AttributeProto
	var err error
	if op == "Gemm" {
		attrs, err = w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{
			"alpha": attrFloat, "beta": attrFloat, "transA": attrInt, "transB": attrInt})
	} else {
		attrs, err = w.attrs(n, id, op, nil)
	}
	if err != nil {
		return err
	}
	switch w.stage {
	case afterLinear:
		return fail(ErrUnsupported, "follows a layer without an activation between them; perceptron's hidden layers each have one")
	case afterScale:
		return fail(ErrUnsupported, "follows a Mul or Div by a scalar; perceptron takes one only as the temperature of the last layer")
	}
	in := n.GetInput()
	switch {
	case len(in) < 2 || op == "MatMul" && len(in) != 2 || len(in) > 3:
		return fail(ErrMalformed, "has %d inputs", len(in))
	case in[0] != w.cur:
		return fail(ErrUnsupported, "the data is its second input; perceptron imports %s(x, W%s) with the data first", op,
			map[bool]string{true: ", b", false: ""}[op == "Gemm"])
	case intAttr(attrs, "transA", 0) != 0:
		return fail(ErrUnsupported, "attribute transA=%d would transpose the batch of inputs; only transA=0 is supported", intAttr(attrs, "transA", 0))
	case w.dims != nil && len(w.dims) != 2:
		return fail(ErrUnsupported, "its input has shape %s; add Flatten before the first layer", shapeString(w.dims))
	}
	b, bdims, err := w.floats(in[1])
	if err != nil {
		return withNode(err, id, op)
	}
	if len(bdims) != 2 {
		return fail(ErrUnsupported, "the weights %s have shape %v; want a matrix", quote(in[1]), bdims)
	}
	k, m := bdims[0], bdims[1]
	transB := intAttr(attrs, "transB", 0) != 0
	if transB {
		k, m = m, k
	}
	if w.dims != nil && w.dims[1] > 0 && int64(k) != w.dims[1] {
		return fail(ErrUnsupported, "the weights %s take %d values but the layer's input has %d", quote(in[1]), k, w.dims[1])
	}
	if k < 1 || m < 1 || k > model.MaxWidth || m > model.MaxWidth {
		return fail(ErrUnsupported, "the weights %s have shape %v; each side must be 1 to %d", quote(in[1]), bdims, model.MaxWidth)
	}
	if len(w.net.layers) >= model.MaxLayers {
		return fail(ErrUnsupported, "more than %d layers", model.MaxLayers)
	}
	// Counted before the layer is allocated: layers may share one initializer, so the file's size alone does not
	// bound what they take.
	if w.params += k*m + m; w.params > model.MaxParams {
		return fail(ErrTooLarge, "the layers so far hold %d weights and biases, more than the %d a network may hold", w.params, model.MaxParams)
	}
	alpha := floatAttr(attrs, "alpha", 1)
	l := layer{in: k, out: m, w: b, b: make([]float32, m)}
	if transB || alpha != 1 { // else the weights are already in perceptron's layout, and only read from here on
		l.w = make([]float32, k*m)
		for i := range k {
			for j := range m {
				v := b[i*m+j]
				if transB {
					v = b[j*k+i]
				}
				l.w[i*m+j] = alpha * v
			}
		}
	}
	if len(in) == 3 && in[2] != "" {
		c, err := w.bias(n, id, op, in[2], m)
		if err != nil {
			return err
		}
		beta := floatAttr(attrs, "beta", 1)
		for j := range l.b {
			l.b[j] = beta * c[j%len(c)]
		}
	}
	if err := checkFinite(l, id, op); err != nil {
		return err
	}
	if w.stage == afterActivation {
		w.net.activation = w.act
	}
	w.net.layers = append(w.net.layers, l)
	w.dims = []int64{batchDim(w.dims), int64(m)}
	w.stage = afterLinear
	return nil
}

// bias returns a constant added to every row of an [N, m] layer output: m values, or one for all.
func (w *walker) bias(n *onnxpb.NodeProto, id, op, name string, m int) ([]float32, error) {
	c, dims, err := w.floats(name)
	if err != nil {
		return nil, withNode(err, id, op)
	}
	ok := len(c) == m || len(c) == 1
	for i, d := range dims {
		if len(dims) > 2 || d != 1 && (d != m || i != len(dims)-1) {
			ok = false
		}
	}
	if !ok {
		return nil, nodeErr(ErrUnsupported, id, op, "the bias %s has shape %v; want [%d], [1,%d] or one value", quote(name), dims, m, m)
	}
	return c, nil
}

func (w *walker) add(n *onnxpb.NodeProto, id, op string) error {
	if _, err := w.attrs(n, id, op, nil); err != nil {
		return err
	}
	if w.stage != afterLinear {
		return nodeErr(ErrUnsupported, id, op, "Add is supported only as the bias of a Gemm or MatMul, right after it")
	}
	in := n.GetInput()
	if len(in) != 2 {
		return nodeErr(ErrMalformed, id, op, "has %d inputs", len(in))
	}
	name := in[1]
	if in[1] == w.cur {
		name = in[0]
	}
	l := &w.net.layers[len(w.net.layers)-1]
	c, err := w.bias(n, id, op, name, l.out)
	if err != nil {
		return err
	}
	for j := range l.b {
		l.b[j] += c[j%len(c)]
	}
	return checkFinite(*l, id, op)
}

// scale reads a Mul or Div of the last layer's scores by a scalar constant: a temperature, which perceptron applies
// before the softmax as a calibrated model's. Anywhere else it is refused.
func (w *walker) scale(n *onnxpb.NodeProto, id, op string) error {
	if _, err := w.attrs(n, id, op, nil); err != nil {
		return err
	}
	in := n.GetInput()
	if len(in) != 2 || (op == "Div" && in[0] != w.cur) {
		return nodeErr(ErrUnsupported, id, op, "%s is supported only of the last layer's scores by a scalar constant", op)
	}
	name := in[1]
	if in[1] == w.cur {
		name = in[0]
	}
	v, _, err := w.floats(name)
	switch {
	case err != nil:
		return withNode(err, id, op)
	case w.stage != afterLinear || w.net.temperature != 1:
		return nodeErr(ErrUnsupported, id, op, "%s is supported only once, right after the last Gemm or MatMul layer (a temperature)", op)
	case len(v) != 1 || !(v[0] > 0) || math.IsInf(float64(v[0]), 0):
		return nodeErr(ErrUnsupported, id, op, "%s by %d values; perceptron takes one positive finite scalar (a temperature)", op, len(v))
	}
	if op == "Mul" {
		w.net.temperature = 1 / float64(v[0])
	} else {
		w.net.temperature = float64(v[0])
	}
	w.stage = afterScale
	return nil
}

func (w *walker) activation(n *onnxpb.NodeProto, id, op string) error {
	if _, err := w.attrs(n, id, op, nil); err != nil {
		return err
	}
	act := map[string]model.Activation{"Relu": model.ReLU, "Sigmoid": model.Sigmoid, "Tanh": model.Tanh}[op]
	switch {
	case w.stage != afterLinear:
		return nodeErr(ErrUnsupported, id, op, "an activation must follow a Gemm or MatMul layer")
	case w.net.activation != 0 && w.net.activation != act:
		return nodeErr(ErrUnsupported, id, op, "%s after %s hidden layers; perceptron's networks use one activation for every hidden layer",
			op, opName(w.net.activation))
	}
	w.act = act
	w.stage = afterActivation
	return nil
}

func (w *walker) softmax(n *onnxpb.NodeProto, id, op string) error {
	attrs, err := w.attrs(n, id, op, map[string]onnxpb.AttributeProto_AttributeType{"axis": attrInt})
	if err != nil {
		return err
	}
	if w.stage != afterLinear && w.stage != afterScale {
		return nodeErr(ErrUnsupported, id, op, "%s must follow the last Gemm or MatMul layer directly (or its temperature)", op)
	}
	def := int64(-1)
	if w.opset < 13 {
		def = 1
	}
	if axis := intAttr(attrs, "axis", def); axis != 1 && axis != -1 {
		return nodeErr(ErrUnsupported, id, op, "attribute axis=%d: perceptron applies %s over the classes, axis=1 or -1", axis, op)
	}
	w.net.output = op
	w.stage = afterSoftmax
	return nil
}
