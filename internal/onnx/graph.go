package onnx

import (
	"fmt"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// layer is one fully connected layer as the graph computes it, in perceptron's layout: out = x·W + B with W
// In x Out row-major.
type layer struct {
	in, out int
	w, b    []float32
}

// Output transforms readGraph recognises on the last layer. perceptron always serves softmax probabilities, which
// have the same argmax as the logits and the log-probabilities.
const (
	outputLogits     = "logits"
	outputSoftmax    = "Softmax"
	outputLogSoftmax = "LogSoftmax"
)

// network is the multilayer perceptron a graph computes.
type network struct {
	input      string  // name of the graph's input
	inputDims  []int64 // its declared shape, -1 for a symbolic or unknown dimension; nil when not declared
	layers     []layer
	activation model.Activation // of the hidden layers; 0 when there are none
	output     string           // outputLogits, outputSoftmax or outputLogSoftmax
	// temperature divides the last layer's scores before the softmax: a Mul or Div by a scalar there (as an export
	// of a calibrated model writes); 1 when there is none.
	temperature float64
}

// stage is where the walk is along the chain: what the previous node was decides what may come next.
type stage int

const (
	atInput         stage = iota // only reshaping so far
	afterLinear                  // after a layer (Gemm, MatMul, or an Add to its bias)
	afterActivation              // after a hidden activation
	afterSoftmax                 // after the final Softmax or LogSoftmax
	afterScale                   // after a temperature (Mul or Div by a scalar) on the last layer's scores
)

// supportedOps is said in refusals, so a user knows what to export instead.
const supportedOps = "Gemm, MatMul, Add, Mul or Div by a scalar after the last layer, Relu, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Reshape, Identity, Dropout and Constant, " +
	"with Shape, Gather, Unsqueeze, Squeeze, Concat, Cast and Slice computing a Reshape's target from the input's shape"

// walker follows the chain of nodes from the graph's input to its output.
type walker struct {
	opset    int64
	consts   map[string]*onnxpb.TensorProto // initializers and Constant outputs
	uses     map[string]int                 // how many node inputs read each value
	net      network
	cur      string  // the value the next node must read
	dims     []int64 // its shape; nil when unknown
	stage    stage
	act      model.Activation                     // the activation just applied, not yet followed by a layer
	params   int                                  // weights and biases of the layers so far
	values   map[*onnxpb.TensorProto]tensorValues // converted constants, so a shared one is converted once
	shapes   map[string][]int64                   // the shapes of the chain's values so far, for Shape nodes
	computed map[string]shapeValue                // the values of shape arithmetic (shapes.go)
}

type tensorValues struct {
	v    []float32
	dims []int
}

// floats returns the values of a constant, converting each once; callers must not modify them.
func (w *walker) floats(name string) ([]float32, []int, error) {
	t := w.consts[name]
	if c, ok := w.values[t]; ok {
		return c.v, c.dims, nil
	}
	v, dims, err := floats(t)
	if err != nil {
		return nil, nil, err
	}
	w.values[t] = tensorValues{v, dims}
	return v, dims, nil
}

// readGraph recognises the multilayer perceptron g computes, or says which node it cannot import and why.
func readGraph(g *onnxpb.GraphProto, opset int64) (*network, error) {
	w := &walker{net: network{temperature: 1}, opset: opset, consts: map[string]*onnxpb.TensorProto{}, uses: map[string]int{},
		values: map[*onnxpb.TensorProto]tensorValues{}, shapes: map[string][]int64{}, computed: map[string]shapeValue{}}
	defined := map[string]bool{}
	for _, t := range g.GetInitializer() {
		if defined[t.GetName()] {
			return nil, malformed("two initializers are called %s", quote(t.GetName()))
		}
		defined[t.GetName()] = true
		w.consts[t.GetName()] = t
	}
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if w.consts[in.GetName()] == nil { // before IR version 4, initializers were listed as inputs too
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = quote(in.GetName())
		}
		return nil, unsupported("the graph has %d inputs (%s); perceptron imports models with one input, the image",
			len(inputs), strings.Join(names, ", "))
	}
	if n := len(g.GetOutput()); n != 1 {
		return nil, unsupported("the graph has %d outputs; perceptron imports models with one output, the class scores", n)
	}
	in := inputs[0]
	if err := w.readInput(in); err != nil {
		return nil, err
	}
	defined[in.GetName()] = true
	for _, n := range g.GetNode() {
		if !usesData(n.GetOpType()) {
			continue
		}
		for _, name := range n.GetInput() {
			w.uses[name]++
		}
	}

	for i, n := range g.GetNode() {
		id := quote(n.GetName())
		if n.GetName() == "" {
			id = fmt.Sprintf("#%d", i)
		}
		op := opLabel(n.GetOpType())
		for _, out := range n.GetOutput() {
			if out != "" && defined[out] {
				return nil, nodeErr(ErrMalformed, id, op, "output %s is defined twice", quote(out))
			}
			defined[out] = true
		}
		if err := w.step(n, id, op); err != nil {
			return nil, err
		}
	}

	out := g.GetOutput()[0].GetName()
	switch {
	case w.cur != out:
		return nil, unsupported("the graph's output %s is not the end of the chain of layers from its input (which ends at %s)",
			quote(out), quote(w.cur))
	case w.uses[out] > 0:
		return nil, unsupported("the graph's output %s is also read by %d nodes; perceptron imports a single chain of layers",
			quote(out), w.uses[out])
	case len(w.net.layers) == 0:
		return nil, unsupported("the graph has no Gemm or MatMul layer")
	case w.stage == afterActivation:
		return nil, unsupported("the graph ends with %s; the output must be the last layer's scores, or their Softmax or LogSoftmax", w.act)
	case w.stage == afterLinear || w.stage == afterScale:
		w.net.output = outputLogits
	}
	return &w.net, nil
}

// readInput checks the graph's input: float32, of a shape an image or a vector of pixels can have.
func (w *walker) readInput(in *onnxpb.ValueInfoProto) error {
	w.net.input, w.cur = in.GetName(), in.GetName()
	w.shapes[w.cur] = nil
	tt := in.GetType().GetTensorType()
	if in.GetType() != nil && tt == nil {
		return unsupported("the input %s is not a tensor", quote(in.GetName()))
	}
	if et := onnxpb.TensorProto_DataType(tt.GetElemType()); et != onnxpb.TensorProto_FLOAT && et != onnxpb.TensorProto_UNDEFINED {
		return unsupported("the input %s holds %s values; perceptron feeds float32 pixels", quote(in.GetName()), et)
	}
	if tt.GetShape() == nil {
		return nil
	}
	dims := make([]int64, len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		dims[i] = -1
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && d.GetDimValue() > 0 {
			dims[i] = d.GetDimValue()
		}
	}
	switch {
	case len(dims) < 2 || len(dims) > 4:
		return unsupported("the input %s has shape %s; perceptron imports [N,features], [N,H,W], [N,1,H,W] or [N,3,H,W]",
			quote(in.GetName()), shapeString(dims))
	case len(dims) == 4 && dims[1] != 1 && dims[1] != 3 && dims[1] != -1:
		return unsupported("the input %s has shape %s with %d channels; perceptron imports one channel (gray) or three (colour)",
			quote(in.GetName()), shapeString(dims), dims[1])
	}
	w.net.inputDims = dims
	w.dims = dims
	w.shapes[w.cur] = dims
	return nil
}

// step applies one node to the walk.
func (w *walker) step(n *onnxpb.NodeProto, id, op string) error {
	fail := func(format string, args ...any) error { return nodeErr(ErrUnsupported, id, op, format, args...) }
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		return fail("operator domain %s is not supported; perceptron imports the default ONNX operators (%s)", quote(d), supportedOps)
	}
	switch op {
	case "Constant":
		return w.constant(n, id, op)
	case "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice":
		return w.shapeStep(n, id, op)
	case "Gemm", "MatMul", "Add", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Flatten", "Reshape", "Identity", "Dropout":
	default:
		return fail("operator %s is not supported; perceptron imports multilayer perceptrons made of %s", op, supportedOps)
	}
	var data []string
	for _, name := range n.GetInput() {
		if name != "" && w.consts[name] == nil && !isComputed(w.computed, name) {
			data = append(data, name)
		}
	}
	switch {
	case len(data) == 0:
		return fail("computes on constants only; fold constants before exporting (onnxsim, or do_constant_folding=True)")
	case len(data) > 1:
		return fail("reads %d non-constant values (%s); perceptron imports a single chain of layers whose weights are initializers",
			len(data), quoteAll(data))
	case data[0] != w.cur:
		return fail("reads %s, which is not the output of the node before it; perceptron imports a single chain of layers", quote(data[0]))
	case w.uses[w.cur] > 1:
		return fail("%s is read by %d nodes; perceptron imports a single chain of layers without branches", quote(w.cur), w.uses[w.cur])
	case len(n.GetOutput()) == 0 || n.GetOutput()[0] == "":
		return fail("has no output")
	}
	for _, extra := range n.GetOutput()[1:] {
		if extra != "" && (op != "Dropout" || w.uses[extra] > 0) {
			return fail("its output %s is used; perceptron imports a single chain of layers", quote(extra))
		}
	}
	if w.stage == afterSoftmax && op != "Identity" {
		return fail("comes after the output's %s; only Identity may follow it", w.net.output)
	}

	var err error
	switch op {
	case "Identity":
		_, err = w.attrs(n, id, op, nil)
	case "Dropout":
		err = w.dropout(n, id, op)
	case "Flatten":
		err = w.flatten(n, id, op)
	case "Reshape":
		err = w.reshape(n, id, op)
	case "Gemm", "MatMul":
		err = w.linear(n, id, op)
	case "Add":
		err = w.add(n, id, op)
	case "Mul", "Div":
		err = w.scale(n, id, op)
	case "Relu", "Sigmoid", "Tanh":
		err = w.activation(n, id, op)
	case "Softmax", "LogSoftmax":
		err = w.softmax(n, id, op)
	}
	if err != nil {
		return err
	}
	w.cur = n.GetOutput()[0]
	w.shapes[w.cur] = w.dims
	return nil
}

// attrs returns a node's attributes by name, refusing any not in allowed, which maps the names a node may have to
// their type.
func (w *walker) attrs(n *onnxpb.NodeProto, id, op string, allowed map[string]onnxpb.AttributeProto_AttributeType) (map[string]*onnxpb.AttributeProto, error) {
	out := map[string]*onnxpb.AttributeProto{}
	for _, a := range n.GetAttribute() {
		typ, ok := allowed[a.GetName()]
		switch {
		case !ok:
			return nil, nodeErr(ErrUnsupported, id, op, "attribute %s is not supported", quote(a.GetName()))
		case a.GetRefAttrName() != "":
			return nil, nodeErr(ErrUnsupported, id, op, "attribute %s refers to a function's attribute", quote(a.GetName()))
		case a.GetType() != typ && a.GetType() != onnxpb.AttributeProto_UNDEFINED:
			return nil, nodeErr(ErrMalformed, id, op, "attribute %s is a %s; want %s", quote(a.GetName()), a.GetType(), typ)
		case out[a.GetName()] != nil:
			return nil, nodeErr(ErrMalformed, id, op, "attribute %s is given twice", quote(a.GetName()))
		}
		out[a.GetName()] = a
	}
	return out, nil
}

func intAttr(attrs map[string]*onnxpb.AttributeProto, name string, def int64) int64 {
	if a := attrs[name]; a != nil {
		return a.GetI()
	}
	return def
}

func floatAttr(attrs map[string]*onnxpb.AttributeProto, name string, def float32) float32 {
	if a := attrs[name]; a != nil {
		return a.GetF()
	}
	return def
}

const (
	attrInt   = onnxpb.AttributeProto_INT
	attrFloat = onnxpb.AttributeProto_FLOAT
)

func checkFinite(l layer, id, op string) error {
	for _, v := range l.w {
		if v-v != 0 { // NaN or infinity, including after alpha scaled a finite weight
			return nodeErr(ErrMalformed, id, op, "a weight times alpha is not finite")
		}
	}
	for _, v := range l.b {
		if v-v != 0 {
			return nodeErr(ErrMalformed, id, op, "a bias times beta is not finite")
		}
	}
	return nil
}

func batchDim(dims []int64) int64 {
	if dims == nil {
		return -1
	}
	return dims[0]
}

// opName is the ONNX operator of an activation.
func opName(a model.Activation) string {
	return map[model.Activation]string{model.ReLU: "Relu", model.Sigmoid: "Sigmoid", model.Tanh: "Tanh"}[a]
}

// nodeErr is an *Error about one node.
func nodeErr(kind error, id, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Node: id, Op: op, Detail: fmt.Sprintf(format, args...)}
}

// withNode names the node in an error about one of its tensors.
func withNode(err error, id, op string) error {
	if e, ok := err.(*Error); ok && e.Op == "" {
		c := *e
		c.Node, c.Op = id, op
		return &c
	}
	return err
}

// shapeString shows a shape with N for an unknown dimension.
func shapeString(dims []int64) string {
	if dims == nil {
		return "(unknown)"
	}
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = fmt.Sprint(d)
		if d < 0 {
			s[i] = "N"
		}
	}
	return "[" + strings.Join(s, ",") + "]"
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, s := range names {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// opLabel shows an operator name from the file: as it is when it looks like one, quoted otherwise.
func opLabel(s string) string {
	if s == "" || len(s) > 64 {
		return quote(s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return quote(s)
		}
	}
	return s
}

func ptr[T any](v T) *T { return &v }
