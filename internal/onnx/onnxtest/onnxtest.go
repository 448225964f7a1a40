// Package onnxtest builds ONNX files for tests: a small builder for hand-made graphs, and the files every importer
// must refuse (a convolution, two inputs, a tensor declaring 2 GiB). It is a test kit; production code never imports it.
package onnxtest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// Model is an ONNX model under construction.
type Model struct{ M *onnxpb.ModelProto }

// New starts a model of the given opset with one float32 input, dims -1 meaning a symbolic batch dimension "N".
func New(opset int64, input string, dims ...int64) *Model {
	m := &Model{M: &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("onnxtest"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph:        &onnxpb.GraphProto{Name: proto.String("test")},
	}}
	m.M.Graph.Input = append(m.M.Graph.Input, ValueInfo(input, dims...))
	return m
}

// ValueInfo describes a float32 tensor; a dimension of -1 is the symbolic "N".
func ValueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}})
		} else {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: shape}}}}
}

// Float32 is a float32 tensor with its values in raw_data.
func Float32(name string, dims []int64, vals []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
}

// Int64 is an int64 tensor in the typed field.
func Int64(name string, dims []int64, vals []int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: vals}
}

// Init adds an initializer.
func (m *Model) Init(t *onnxpb.TensorProto) *Model {
	m.M.Graph.Initializer = append(m.M.Graph.Initializer, t)
	return m
}

// Input adds another graph input.
func (m *Model) Input(name string, dims ...int64) *Model {
	m.M.Graph.Input = append(m.M.Graph.Input, ValueInfo(name, dims...))
	return m
}

// Node adds a node of the default domain.
func (m *Model) Node(name, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *Model {
	m.M.Graph.Node = append(m.M.Graph.Node, &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op),
		Input: in, Output: out, Attribute: attrs})
	return m
}

// Output declares the graph's output.
func (m *Model) Output(name string, dims ...int64) *Model {
	m.M.Graph.Output = append(m.M.Graph.Output, ValueInfo(name, dims...))
	return m
}

// Bytes encodes the model.
func (m *Model) Bytes() []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.M)
	if err != nil {
		panic("onnxtest: " + err.Error())
	}
	return b
}

// Int is an integer attribute.
func Int(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// Float is a float attribute.
func Float(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// Tensor is a tensor attribute, as a Constant node's value.
func Tensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// Random returns n values drawn uniformly from [-1, 1).
func Random(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*rng.Float64() - 1)
	}
	return v
}

// MLP is the graph PyTorch writes for nn.Sequential(Linear, ReLU, ..., Linear, Softmax) with sizes[0] inputs:
// Gemm with transB=1 (weights [out, in]), random weights from seed.
func MLP(seed uint64, sizes ...int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := New(17, "x", -1, int64(sizes[0]))
	x := "x"
	for i := 1; i < len(sizes); i++ {
		in, out := int64(sizes[i-1]), int64(sizes[i])
		w, b, y := "fc"+strconv.Itoa(i)+".weight", "fc"+strconv.Itoa(i)+".bias", "h"+strconv.Itoa(i)
		m.Init(Float32(w, []int64{out, in}, Random(rng, int(in*out)))).Init(Float32(b, []int64{out}, Random(rng, int(out))))
		m.Node("gemm"+strconv.Itoa(i), "Gemm", []string{x, w, b}, []string{y}, Int("transB", 1))
		x = y
		if i < len(sizes)-1 {
			m.Node("relu"+strconv.Itoa(i), "Relu", []string{x}, []string{x + "r"})
			x += "r"
		}
	}
	m.Node("softmax", "Softmax", []string{x}, []string{"probs"}, Int("axis", 1))
	return m.Output("probs", -1, int64(sizes[len(sizes)-1])).Bytes()
}

// Conv is a small convolutional network: Conv, Relu, Flatten, Gemm. Importers of MLPs refuse it at the Conv.
func Conv() []byte {
	rng := rand.New(rand.NewPCG(2, 2))
	return New(17, "x", -1, 1, 28, 28).
		Init(Float32("conv.weight", []int64{4, 1, 3, 3}, Random(rng, 36))).
		Init(Float32("fc.weight", []int64{10, 4 * 26 * 26}, Random(rng, 10*4*26*26))).
		Node("conv1", "Conv", []string{"x", "conv.weight"}, []string{"c"}).
		Node("relu1", "Relu", []string{"c"}, []string{"r"}).
		Node("flatten", "Flatten", []string{"r"}, []string{"f"}).
		Node("fc", "Gemm", []string{"f", "fc.weight"}, []string{"y"}, Int("transB", 1)).
		Output("y", -1, 10).Bytes()
}

// TwoInputs is an MLP whose Gemm adds a second graph input as its bias.
func TwoInputs() []byte {
	rng := rand.New(rand.NewPCG(3, 3))
	return New(17, "x", -1, 4).Input("b", 2).
		Init(Float32("w", []int64{4, 2}, Random(rng, 8))).
		Node("gemm", "Gemm", []string{"x", "w", "b"}, []string{"y"}).
		Output("y", -1, 2).Bytes()
}

// HugeTensor is a small file whose weight tensor declares [2^19, 1024] float32 values, 2 GiB, and holds none.
func HugeTensor() []byte {
	return New(17, "x", -1, 1<<19).
		Init(&onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{1 << 19, 1024}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: []byte{1, 2, 3, 4}}).
		Node("gemm", "Gemm", []string{"x", "w"}, []string{"y"}).
		Output("y", -1, 1024).Bytes()
}
