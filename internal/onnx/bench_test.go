package onnx

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// BenchmarkImport times importing a 784-1024-1024-10 network (1.86 million float32 weights, 7.5 MB), as perceptron
// exports it and in PyTorch's layout (Gemm with transB=1, so every weight matrix is transposed on the way in).
func BenchmarkImport(b *testing.B) {
	sizes := []int{784, 1024, 1024, 10}
	labels := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	net, err := model.New(model.Info{Name: "big", Created: time.Unix(0, 0), Layers: sizes, Activation: model.ReLU, Labels: labels,
		Input: model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	ours, err := Export(net)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		file []byte
	}{
		{"layout=perceptron/784-1024-1024-10", ours},
		{"layout=pytorch/784-1024-1024-10", onnxtest.MLP(1, sizes...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.file)))
			for b.Loop() {
				if _, err := ImportBytes(bc.file, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExport times exporting the same network.
func BenchmarkExport(b *testing.B) {
	net, err := model.New(model.Info{Name: "big", Created: time.Unix(0, 0), Layers: []int{784, 1024, 1024, 10}, Activation: model.ReLU,
		Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, Input: model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}},
		rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Export(net); err != nil {
			b.Fatal(err)
		}
	}
}
