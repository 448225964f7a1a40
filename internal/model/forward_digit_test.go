package model

import (
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
)

// BenchmarkForwardDigit measures one-image passes of the embedded default model on real MNIST test digits, whose
// background zeros let the first layer skip most of its weights, next to the same passes on dense random inputs:
//
//	go test ./internal/model -run '^$' -bench ForwardDigit
func BenchmarkForwardDigit(b *testing.B) {
	net, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	set := mnisttest.Test(b)
	digits := make([]float32, n*784)
	for i := range n {
		set.Inputs(digits[i*784:(i+1)*784], i)
	}
	for _, bc := range []struct {
		name string
		x    []float32
	}{{"input=mnist", digits}, {"input=dense", randomInputs(n, 784, 4)}} {
		b.Run(bc.name, func(b *testing.B) {
			ws := Workspace[float32]{Serial: true}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				net.Forward(bc.x[i*784:(i+1)*784], 1, &ws)
				i = (i + 1) % n
			}
		})
	}
}
