package onnx

import (
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// FuzzImport feeds the importer exported models, hand-made graphs of every accepted form and mutations of them.
// Whatever the bytes, it must return a network or an *Error, never panic; a network it returns must be valid and
// survive export and import unchanged.
func FuzzImport(f *testing.F) {
	small, err := Export(sigmoidNet(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(onnxtest.MLP(1, 6, 4, 3))
	f.Add(onnxtest.TwoInputs())
	f.Add(onnxtest.HugeTensor())
	f.Add(pytorch(newSpec(1, "Relu", 16, 4, 3), 4, 4))
	f.Add(matmulAdd(newSpec(2, "Tanh", 9, 4, 2)))
	f.Add(scaledDouble(newSpec(3, "Sigmoid", 4, 3, 2)))
	f.Add(half(newSpec(4, "Relu", 4, 3, 2)))
	f.Add(viewOpset9(f, newSpec(6, "Relu", 16, 3, 2)))
	f.Add(viewOpset13(f, newSpec(7, "Tanh", 16, 3, 2)))
	// Mutated graphs: each changes one thing the importer checks.
	for _, change := range []func(m *onnxpb.ModelProto){
		func(m *onnxpb.ModelProto) { m.Graph.Node[1].Input[0] = "input" },
		func(m *onnxpb.ModelProto) { m.Graph.Node = m.Graph.Node[:len(m.Graph.Node)-1] },
		func(m *onnxpb.ModelProto) { m.Graph.Initializer[0].Dims = []int64{1 << 40, 1 << 40} },
		func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = proto.String("Reshape") },
		func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(9) },
	} {
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(pytorch(newSpec(5, "Relu", 9, 3, 2), 3, 3), &m); err != nil {
			f.Fatal(err)
		}
		change(&m)
		b, _ := proto.Marshal(&m)
		f.Add(b)
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		net, err := ImportBytes(data, Options{MaxBytes: 1 << 20, Created: created})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			return
		}
		if err := net.Validate(); err != nil {
			t.Fatalf("imported an invalid network: %v", err)
		}
		file, err := Export(net)
		if err != nil {
			t.Fatalf("cannot export an imported network: %v", err)
		}
		again, err := ImportBytes(file, Options{Created: created})
		if err != nil {
			t.Fatalf("cannot import an exported network: %v", err)
		}
		if !slices.Equal(again.MLP.Params, net.MLP.Params) || again.Version != net.Version {
			t.Fatalf("export and import changed the network: version %s, then %s", net.Version, again.Version)
		}
	})
}
