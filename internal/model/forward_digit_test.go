package model

import (
	"strconv"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
)

// BenchmarkForwardDigit measures passes of the embedded default model on batches of real MNIST test digits, whose
// background zeros let the first layer skip most of its weights, next to the same passes on dense random inputs:
//
//	go test ./internal/model -run '^$' -bench ForwardDigit
func BenchmarkForwardDigit(b *testing.B) {
	net, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	const n = 96 // a multiple of every batch size
	set := mnisttest.Test(b)
	digits := make([]float32, n*784)
	for i := range n {
		set.Inputs(digits[i*784:(i+1)*784], i)
	}
	for _, bc := range []struct {
		name string
		x    []float32
	}{{"input=mnist", digits}, {"input=dense", randomInputs(n, 784, 4)}} {
		for _, batch := range []int{1, 2, 4, 8, 12, 16, 32} {
			b.Run(bc.name+"/batch="+strconv.Itoa(batch), func(b *testing.B) {
				ws := Workspace[float32]{Serial: true}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					net.Forward(bc.x[i*784:(i+batch)*784], batch, &ws)
					i = (i + batch) % n
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N*batch), "us/image")
			})
		}
	}
}

// BenchmarkForwardDigitGate measures what serving a batch of real MNIST test digits costs the default model: the
// digit network's pass and the gate's on the same rows, as the inference engine runs them (ForwardGated).
//
//	go test ./internal/model -run '^$' -bench ForwardDigitGate -cpu 1
func BenchmarkForwardDigitGate(b *testing.B) {
	net, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	if net.GateMLP == nil {
		b.Fatal("the default model has no gate")
	}
	const n = 96
	set := mnisttest.Test(b)
	digits := make([]float32, n*784)
	for i := range n {
		set.Inputs(digits[i*784:(i+1)*784], i)
	}
	for _, batch := range []int{1, 16} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			ws := Workspace[float32]{Serial: true}
			var scores []float32
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				x := digits[i*784 : (i+batch)*784]
				_, scores = net.ForwardGated(x, batch, &ws, scores[:0])
				i = (i + batch) % n
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N*batch), "us/image")
		})
	}
}
