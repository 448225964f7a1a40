package onnx

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// shapeNode is a node of a hand-made shape computation.
func shapeNode(name, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func constNode(name string, dims []int64, vals ...int64) *onnxpb.NodeProto {
	return shapeNode(name, "Constant", nil, []string{name}, onnxtest.Tensor("value", onnxtest.Int64("", dims, vals)))
}

func ints64(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// viewFlatten writes s as pytorch does, with its Flatten replaced by nodes that compute the target "target" of a
// Reshape of the input, in the given opset.
func viewFlatten(t testing.TB, s spec, opset int64, nodes ...*onnxpb.NodeProto) []byte {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(pytorch(s, 4, 4), &m); err != nil {
		t.Fatal(err)
	}
	m.OpsetImport[0].Version = proto.Int64(opset)
	reshape := shapeNode("/Reshape", "Reshape", []string{"input", "target"}, []string{"f"})
	m.Graph.Node = append(append(nodes, reshape), m.Graph.Node[1:]...)
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// viewOpset9 is x.view(x.size(0), -1) as torch.onnx.export writes it in opsets 9 to 12.
func viewOpset9(t testing.TB, s spec) []byte {
	return viewFlatten(t, s, 9,
		shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"}),
		constNode("zero", nil, 0),
		shapeNode("/Gather", "Gather", []string{"shape", "zero"}, []string{"batch"}, onnxtest.Int("axis", 0)),
		shapeNode("/Unsqueeze", "Unsqueeze", []string{"batch"}, []string{"batch1"}, ints64("axes", 0)),
		constNode("minus1", []int64{1}, -1),
		shapeNode("/Concat", "Concat", []string{"batch1", "minus1"}, []string{"target"}, onnxtest.Int("axis", 0)))
}

// viewOpset13 is the same in opset 13 and later, where Unsqueeze reads its axes as an input.
func viewOpset13(t testing.TB, s spec) []byte {
	return viewFlatten(t, s, 17,
		shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"}),
		constNode("zero", nil, 0),
		shapeNode("/Gather", "Gather", []string{"shape", "zero"}, []string{"batch"}, onnxtest.Int("axis", 0)),
		constNode("axes", []int64{1}, 0),
		shapeNode("/Unsqueeze", "Unsqueeze", []string{"batch", "axes"}, []string{"batch1"}),
		constNode("minus1", []int64{1}, -1),
		shapeNode("/Concat", "Concat", []string{"batch1", "minus1"}, []string{"target"}, onnxtest.Int("axis", 0)))
}

func TestImportEvaluatesTheShapeArithmeticOfAFlatten(t *testing.T) {
	s := newSpec(7, "Relu", 16, 6, 3)
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"x.view(x.size(0), -1) in opset 9: Shape, Gather, Unsqueeze with axes, Concat", viewOpset9(t, s)},
		{"x.view(x.size(0), -1) in opset 17: Unsqueeze with its axes as an input", viewOpset13(t, s)},
		{"a target of [batch, K]", viewFlatten(t, s, 17,
			shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"}),
			constNode("zero", []int64{1}, 0),
			shapeNode("/Gather", "Gather", []string{"shape", "zero"}, []string{"batch1"}),
			constNode("k", []int64{1}, 16),
			shapeNode("/Concat", "Concat", []string{"batch1", "k"}, []string{"target"}, onnxtest.Int("axis", 0)))},
		{"Shape with start and end (opset 15)", viewFlatten(t, s, 15,
			shapeNode("/Shape", "Shape", []string{"input"}, []string{"batch1"}, onnxtest.Int("start", 0), onnxtest.Int("end", 1)),
			constNode("minus1", []int64{1}, -1),
			shapeNode("/Concat", "Concat", []string{"batch1", "minus1"}, []string{"target"}, onnxtest.Int("axis", -1)))},
		{"Slice with constant bounds, Squeeze, Unsqueeze and Cast", viewFlatten(t, s, 13,
			shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"}),
			constNode("start", []int64{1}, 0), constNode("end", []int64{1}, 1), constNode("axes", []int64{1}, 0),
			shapeNode("/Slice", "Slice", []string{"shape", "start", "end", "axes"}, []string{"sliced"}),
			shapeNode("/Squeeze", "Squeeze", []string{"sliced", "axes"}, []string{"batch"}),
			shapeNode("/Unsqueeze", "Unsqueeze", []string{"batch", "axes"}, []string{"batch1"}),
			shapeNode("/Cast", "Cast", []string{"batch1"}, []string{"cast"}, onnxtest.Int("to", int64(onnxpb.TensorProto_INT64))),
			constNode("minus1", []int64{1}, -1),
			shapeNode("/Concat", "Concat", []string{"cast", "minus1"}, []string{"target"}, onnxtest.Int("axis", 0)))},
		{"Slice with its bounds as attributes (opset 9), an end past the last dimension", viewFlatten(t, s, 9,
			shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"}),
			shapeNode("/Slice", "Slice", []string{"shape"}, []string{"dims"}, ints64("starts", 1), ints64("ends", math.MaxInt64)),
			shapeNode("/Slice0", "Slice", []string{"shape"}, []string{"batch1"}, ints64("starts", -4), ints64("ends", -3)),
			constNode("minus1", []int64{1}, -1),
			shapeNode("/Concat", "Concat", []string{"batch1", "minus1"}, []string{"target"}, onnxtest.Int("axis", 0)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net, err := ImportBytes(tc.file, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := net.Layers; !equalInts(got, s.sizes) {
				t.Fatalf("layers = %v; want %v", got, s.sizes)
			}
			if net.Input != (model.Input{Width: 4, Height: 4, Preprocess: model.PreprocessResize}) {
				t.Errorf("input = %+v; want 4x4 resize", net.Input)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			const batch = 5
			x := onnxtest.Random(rng, batch*16)
			got := net.Forward(x, batch, &model.Workspace[float32]{})
			for r := range batch {
				for c, want := range s.forward(x[r*16 : (r+1)*16]) {
					if d := math.Abs(float64(got[r*3+c]) - want); d > 1e-5 {
						t.Fatalf("example %d class %d: probability %v; want %v (difference %.2g)", r, c, got[r*3+c], want, d)
					}
				}
			}
		})
	}
}

func TestImportRefusesShapeArithmeticThatIsNotAFlatten(t *testing.T) {
	s := newSpec(8, "Relu", 16, 6, 3)
	shape := shapeNode("/Shape", "Shape", []string{"input"}, []string{"shape"})
	minus1 := constNode("minus1", []int64{1}, -1)
	zero := constNode("zero", []int64{1}, 0)
	for _, tc := range []struct {
		name string
		file []byte
		want []string
	}{
		{"a Reshape that mixes the batch into the features", viewFlatten(t, s, 17, shape, minus1, zero,
			shapeNode("/Gather", "Gather", []string{"shape", "zero"}, []string{"batch1"}),
			shapeNode("/Concat", "Concat", []string{"minus1", "batch1"}, []string{"target"}, onnxtest.Int("axis", 0))),
			[]string{`node "/Reshape" (Reshape)`, "to [-1 N]"}},
		{"a Reshape to [batch, batch]", viewFlatten(t, s, 17, shape, zero,
			shapeNode("/Gather", "Gather", []string{"shape", "zero"}, []string{"batch1"}),
			shapeNode("/Concat", "Concat", []string{"batch1", "batch1"}, []string{"target"}, onnxtest.Int("axis", 0))),
			[]string{`node "/Reshape" (Reshape)`, "to [N N]"}},
		{"a Reshape to the whole input shape", viewFlatten(t, s, 17,
			shapeNode("/Shape", "Shape", []string{"input"}, []string{"target"})),
			[]string{`node "/Reshape" (Reshape)`, "to [N 1 4 4]"}},
		{"a Gather of a non-constant index", viewFlatten(t, s, 17, shape, zero,
			shapeNode("/Index", "Gather", []string{"shape", "zero"}, []string{"index"}),
			shapeNode("/Gather", "Gather", []string{"shape", "index"}, []string{"batch1"}),
			shapeNode("/Concat", "Concat", []string{"batch1", "minus1"}, []string{"target"})),
			[]string{`node "/Gather" (Gather)`, `indices "index" are not a constant`}},
		{"a Gather from the data", viewFlatten(t, s, 17, zero,
			shapeNode("/Gather", "Gather", []string{"input", "zero"}, []string{"target"})),
			[]string{`node "/Gather" (Gather)`, `reads "input"`}},
		{"a Gather out of range", viewFlatten(t, s, 17, shape, constNode("nine", nil, 9),
			shapeNode("/Gather", "Gather", []string{"shape", "nine"}, []string{"target"})),
			[]string{`node "/Gather" (Gather)`, "index 9 is outside a vector of 4 values"}},
		{"an Unsqueeze of a vector", viewFlatten(t, s, 9, shape,
			shapeNode("/Unsqueeze", "Unsqueeze", []string{"shape"}, []string{"target"}, ints64("axes", 1))),
			[]string{`node "/Unsqueeze" (Unsqueeze)`, "axes [1] of a vector"}},
		{"a Cast to float", viewFlatten(t, s, 17, shape,
			shapeNode("/Cast", "Cast", []string{"shape"}, []string{"target"}, onnxtest.Int("to", int64(onnxpb.TensorProto_FLOAT)))),
			[]string{`node "/Cast" (Cast)`, "casts to FLOAT"}},
		{"a Slice of step 2", viewFlatten(t, s, 17, shape, zero, constNode("end", []int64{1}, 4), constNode("two", []int64{1}, 2),
			shapeNode("/Slice", "Slice", []string{"shape", "zero", "end", "zero", "two"}, []string{"target"})),
			[]string{`node "/Slice" (Slice)`, "steps [2]"}},
		{"a target from a dimension the input does not declare", edit(t, viewFlatten(t, s, 17, shape, minus1,
			constNode("two", []int64{1}, 2),
			shapeNode("/Gather", "Gather", []string{"shape", "two"}, []string{"h"}),
			shapeNode("/Concat", "Concat", []string{"minus1", "h"}, []string{"target"})), func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[2].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "H"}
		}), []string{`node "/Reshape" (Reshape)`, "to [-1 ?]"}},
		{"a Shape of a weight", viewFlatten(t, s, 17, shapeNode("/Shape", "Shape", []string{"W0"}, []string{"target"})),
			[]string{`node "/Shape" (Shape)`, "not a value of the chain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net, err := ImportBytes(tc.file, Options{})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("ImportBytes = %v, %v; want an *Error", net, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
