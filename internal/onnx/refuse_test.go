package onnx

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// edit decodes an ONNX file, lets change alter it, and encodes it again.
func edit(t *testing.T, file []byte, change func(m *onnxpb.ModelProto)) []byte {
	t.Helper()
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	change(&m)
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func node(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for _, n := range m.Graph.Node {
		if n.GetName() == name {
			return n
		}
	}
	panic("no node " + name)
}

func TestImportRefusesWhatItCannotServe(t *testing.T) {
	mlp := pytorch(newSpec(1, "Relu", 16, 6, 5, 3), 4, 4)
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		file []byte
		kind error
		want []string // all in the message
	}{
		{"a convolutional network", onnxtest.Conv(), ErrUnsupported, []string{`node "conv1" (Conv)`, "operator Conv is not supported"}},
		{"a model with two inputs", onnxtest.TwoInputs(), ErrUnsupported, []string{"2 inputs", `"x", "b"`}},
		{"a truncated file", mlp[:len(mlp)/2], ErrMalformed, []string{"truncated or not ONNX"}},
		{"random bytes", random, ErrMalformed, []string{"not an ONNX model"}},
		{"an empty file", nil, ErrMalformed, []string{"empty"}},
		{"a tensor declaring 2 GiB", onnxtest.HugeTensor(), ErrTooLarge, []string{`tensor "w"`, "[524288 1024]", "2.0 GiB"}},
		{"external data", edit(t, mlp, func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
			m.Graph.Initializer[0].RawData = nil
		}), ErrUnsupported, []string{`tensor "W0"`, "external file"}},
		{"opset 8", edit(t, mlp, func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(8) }), ErrUnsupported, []string{"opset 8", "9 to 21"}},
		{"opset 22", edit(t, mlp, func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(22) }), ErrUnsupported, []string{"opset 22"}},
		{"a Gemm with transA=1", edit(t, mlp, func(m *onnxpb.ModelProto) {
			node(m, "/fc1").Attribute = append(node(m, "/fc1").Attribute, onnxtest.Int("transA", 1))
		}), ErrUnsupported, []string{`node "/fc1" (Gemm)`, "transA=1"}},
		{"an unknown attribute", edit(t, mlp, func(m *onnxpb.ModelProto) {
			node(m, "/fc0").Attribute = append(node(m, "/fc0").Attribute, onnxtest.Int("broadcast", 1))
		}), ErrUnsupported, []string{`node "/fc0" (Gemm)`, `attribute "broadcast"`}},
		{"two different hidden activations", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/act1").OpType = proto.String("Tanh") }),
			ErrUnsupported, []string{`node "/act1" (Tanh)`, "one activation"}},
		{"an unsupported activation", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/act0").OpType = proto.String("LeakyRelu") }),
			ErrUnsupported, []string{`node "/act0" (LeakyRelu)`, "operator LeakyRelu"}},
		{"Softmax over the batch", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/softmax").Attribute[0].I = proto.Int64(0) }),
			ErrUnsupported, []string{`node "/softmax" (Softmax)`, "axis=0"}},
		{"an activation on the output", edit(t, mlp, func(m *onnxpb.ModelProto) {
			node(m, "/softmax").OpType = proto.String("Relu")
			node(m, "/softmax").Attribute = nil
		}),
			ErrUnsupported, []string{"ends with relu"}},
		{"a branch", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/fc1").Input[0] = "g0" }),
			ErrUnsupported, []string{"read by 2 nodes"}},
		{"two layers without an activation", edit(t, mlp, func(m *onnxpb.ModelProto) {
			node(m, "/fc1").Input[0] = "g0"
			node(m, "/act0").Input[0] = "unused"
		}), ErrUnsupported, []string{"reads \"unused\""}},
		{"a Flatten over the batch", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/flatten/Flatten").Attribute[0].I = proto.Int64(0) }),
			ErrUnsupported, []string{"axis=0"}},
		{"integer weights", edit(t, mlp, func(m *onnxpb.ModelProto) {
			w := m.Graph.Initializer[0]
			w.DataType = proto.Int32(int32(onnxpb.TensorProto_INT32))
			w.Int32Data, w.RawData = make([]int32, 6*16), nil
		}), ErrUnsupported, []string{`node "/fc0" (Gemm)`, "INT32 values"}},
		{"weights that do not fit the input", edit(t, mlp, func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{8, 12}
		}), ErrUnsupported, []string{"take 12 values but the layer's input has 16"}},
		{"a tensor shorter than its dimensions", edit(t, mlp, func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{7, 16}
		}), ErrMalformed, []string{"declares 112 values (448 bytes) but raw_data holds 384"}},
		{"a NaN weight", edit(t, mlp, func(m *onnxpb.ModelProto) {
			copy(m.Graph.Initializer[0].RawData, []byte{0, 0, 0xc0, 0x7f})
		}), ErrMalformed, []string{"NaN"}},
		{"a two-channel input", edit(t, mlp, func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 2}
		}), ErrUnsupported, []string{"2 channels"}},
		{"Dropout in training mode", onnxtest.New(13, "x", -1, 4).
			Init(onnxtest.Float32("w", []int64{4, 2}, make([]float32, 8))).
			Init(&onnxpb.TensorProto{Name: proto.String("train"), DataType: proto.Int32(int32(onnxpb.TensorProto_BOOL)), RawData: []byte{1}}).
			Node("drop", "Dropout", []string{"x", "", "train"}, []string{"d"}).
			Node("mm", "MatMul", []string{"d", "w"}, []string{"y"}).Output("y").Bytes(), ErrUnsupported, []string{`node "drop" (Dropout)`, "training_mode"}},
		{"a scale of a hidden layer", onnxtest.New(13, "x", -1, 4).
			Init(onnxtest.Float32("w", []int64{4, 2}, make([]float32, 8))).Init(onnxtest.Float32("s", []int64{}, []float32{2})).
			Node("mm", "MatMul", []string{"x", "w"}, []string{"h"}).Node("scale", "Mul", []string{"h", "s"}, []string{"hs"}).
			Node("act", "Relu", []string{"hs"}, []string{"y"}).Output("y").Bytes(), ErrUnsupported, []string{`node "act" (Relu)`}},
		{"a scale by a vector", onnxtest.New(13, "x", -1, 4).
			Init(onnxtest.Float32("w", []int64{4, 2}, make([]float32, 8))).Init(onnxtest.Float32("s", []int64{2}, []float32{2, 3})).
			Node("mm", "MatMul", []string{"x", "w"}, []string{"h"}).Node("scale", "Div", []string{"h", "s"}, []string{"y"}).
			Output("y").Bytes(), ErrUnsupported, []string{`node "scale" (Div)`, "one positive finite scalar"}},
		{"a node of another domain", edit(t, mlp, func(m *onnxpb.ModelProto) { node(m, "/act0").Domain = proto.String("com.microsoft") }),
			ErrUnsupported, []string{`domain "com.microsoft"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net, err := ImportBytes(tc.file, Options{})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.kind) {
				t.Fatalf("ImportBytes = %v, %v; want an *Error of kind %v", net, err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestImportRefusesAFileOverTheLimitBeforeDecoding(t *testing.T) {
	file := pytorch(newSpec(1, "Relu", 16, 3), 4, 4)
	_, err := Import(strings.NewReader(string(file)), Options{MaxBytes: int64(len(file) - 1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("error = %v; want ErrTooLarge", err)
	}
	if _, err := Import(strings.NewReader(string(file)), Options{MaxBytes: int64(len(file))}); err != nil {
		t.Errorf("a file exactly at the limit: %v", err)
	}
}

// TestImportCountsSharedInitializersAgainstTheLimit: layers may all read one initializer, so a file well under the
// size limit could describe far more weights than it holds; the importer counts the layers' weights before
// building each one. The file holds a 4096x4096 matrix (64 MiB), which is slow to build under the race detector.
func TestImportCountsSharedInitializersAgainstTheLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 64 MiB file")
	}
	const n = 4096
	m := onnxtest.New(17, "x", -1, n).Init(&onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{n, n},
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: make([]float32, n*n)})
	x := "x"
	for i := range 5 {
		y := fmt.Sprint("y", i)
		m.Node(fmt.Sprint("gemm", i), "Gemm", []string{x, "w"}, []string{y}).Node(fmt.Sprint("relu", i), "Relu", []string{y}, []string{y + "r"})
		x = y + "r"
	}
	file := m.Node("last", "Gemm", []string{x, "w"}, []string{"out"}).Output("out").Bytes()
	_, err := ImportBytes(file, Options{})
	// Three layers of 4096x4096 plus biases fit in model.MaxParams (2^26); the fourth does not.
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `node "gemm3" (Gemm)`) {
		t.Errorf("error = %v; want ErrTooLarge at gemm3", err)
	}
}
