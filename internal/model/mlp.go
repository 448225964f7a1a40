package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/perceptron-dev/perceptron/internal/gemm"
)

// Limits on an architecture, so a model file or a training request cannot ask for absurd memory.
const (
	MaxLayers = 16      // weight layers, hidden plus output
	MaxWidth  = 1 << 16 // units in any layer, inputs included
	MaxParams = 1 << 26 // weights and biases in all (256 MiB of float32)
)

// MLP is the numeric part of a multilayer perceptron: fully connected layers of the given sizes (inputs first,
// classes last), the hidden activation, and every weight and bias in one flat slice so optimizers and the file
// format treat them as one vector. Layers are views into Params.
type MLP[T Float] struct {
	Sizes      []int
	Activation Activation
	Params     []T
	Layers     []Layer[T]
}

// Layer is one fully connected layer, y = act(x·W + b), with W stored In x Out row-major.
type Layer[T Float] struct {
	In, Out int
	W, B    []T
}

// CheckArchitecture reports whether sizes describe a network we are willing to build.
func CheckArchitecture(sizes []int) error {
	if len(sizes) < 2 {
		return fmt.Errorf("architecture %v: need at least an input and an output size", sizes)
	}
	if len(sizes)-1 > MaxLayers {
		return fmt.Errorf("architecture %v: %d layers, at most %d", sizes, len(sizes)-1, MaxLayers)
	}
	for _, s := range sizes {
		if s < 1 || s > MaxWidth {
			return fmt.Errorf("architecture %v: layer width %d outside 1..%d", sizes, s, MaxWidth)
		}
	}
	if sizes[len(sizes)-1] < 2 {
		return fmt.Errorf("architecture %v: need at least two classes", sizes)
	}
	if n := ParamCount(sizes); n > MaxParams {
		return fmt.Errorf("architecture %v: %d parameters, at most %d", sizes, n, MaxParams)
	}
	return nil
}

// ParamCount returns the number of weights and biases of a network with these layer sizes.
func ParamCount(sizes []int) int {
	n := 0
	for i := 1; i < len(sizes); i++ {
		n += (sizes[i-1] + 1) * sizes[i]
	}
	return n
}

// NewMLP returns a zero network of the given sizes. It panics on an invalid architecture: callers validate first.
func NewMLP[T Float](sizes []int, act Activation) *MLP[T] {
	if err := CheckArchitecture(sizes); err != nil {
		panic("model: " + err.Error())
	}
	m := &MLP[T]{Sizes: append([]int(nil), sizes...), Activation: act}
	m.Bind(make([]T, ParamCount(sizes)))
	return m
}

// Bind makes the layers views into params, which must hold ParamCount(m.Sizes) values. Optimizers use it to look at
// a gradient vector with the same layout as the weights.
func (m *MLP[T]) Bind(params []T) {
	if len(params) != ParamCount(m.Sizes) {
		panic(fmt.Sprintf("model: %d parameters for architecture %v", len(params), m.Sizes))
	}
	m.Params = params
	m.Layers = m.Layers[:0]
	off := 0
	for i := 1; i < len(m.Sizes); i++ {
		in, out := m.Sizes[i-1], m.Sizes[i]
		w := params[off : off+in*out : off+in*out]
		off += in * out
		b := params[off : off+out : off+out]
		off += out
		m.Layers = append(m.Layers, Layer[T]{In: in, Out: out, W: w, B: b})
	}
}

// Init draws the weights from rng and zeroes the biases: He initialisation (normal, variance 2/in) for ReLU,
// Xavier/Glorot (uniform, variance 2/(in+out)) for sigmoid and tanh.
func (m *MLP[T]) Init(rng *rand.Rand) {
	for _, l := range m.Layers {
		if m.Activation == ReLU {
			std := math.Sqrt(2 / float64(l.In))
			for i := range l.W {
				l.W[i] = T(rng.NormFloat64() * std)
			}
		} else {
			lim := math.Sqrt(6 / float64(l.In+l.Out))
			for i := range l.W {
				l.W[i] = T((2*rng.Float64() - 1) * lim)
			}
		}
		clear(l.B)
	}
}

// Inputs and Classes report the sizes of the first and last layer.
func (m *MLP[T]) Inputs() int  { return m.Sizes[0] }
func (m *MLP[T]) Classes() int { return m.Sizes[len(m.Sizes)-1] }

// Workspace is the scratch memory of forward passes: one output buffer per layer, grown as needed and reused. The zero
// value is ready to use. A workspace belongs to one goroutine; the network it is used with is only read, so many
// goroutines may share one network, each with its own workspace.
type Workspace[T Float] struct {
	// Serial keeps the matrix products on the calling goroutine; set it when the caller already runs one goroutine
	// per core (the inference workers). The zero value lets large products use every core.
	Serial bool
	// Outputs[i] holds the batch's output of layer i after Forward: hidden activations, then class probabilities.
	Outputs [][]T

	scratch []float64     // per-row scratch of Network.Distances
	gate    *Workspace[T] // the gate network's own outputs (Network.NotDigitScores)
}

func (ws *Workspace[T]) output(i, size int) []T {
	for len(ws.Outputs) <= i {
		ws.Outputs = append(ws.Outputs, nil)
	}
	if cap(ws.Outputs[i]) < size {
		ws.Outputs[i] = make([]T, size)
	}
	ws.Outputs[i] = ws.Outputs[i][:size]
	return ws.Outputs[i]
}

// Forward runs a batch of n examples, x holding n rows of Inputs() values, and returns the n x Classes() matrix of
// class probabilities, which lives in ws and is overwritten by the next call. Each layer is one matrix product over
// the whole batch, with the bias pre-loaded into the output so the product adds to it.
func (m *MLP[T]) Forward(x []T, n int, ws *Workspace[T]) []T { return m.forward(x, n, ws, 1, true) }

// Logits is Forward without the final softmax: the n x Classes() matrix of the output layer's pre-activations, in ws
// like Forward's result. Calibration fits a temperature to them.
func (m *MLP[T]) Logits(x []T, n int, ws *Workspace[T]) []T { return m.forward(x, n, ws, 1, false) }

// forward runs the layers; the output layer's values are divided by temperature before the softmax when softmax is
// set. A temperature of exactly 1 leaves them untouched, so an uncalibrated model's probabilities are bit for bit
// what they always were.
func (m *MLP[T]) forward(x []T, n int, ws *Workspace[T], temperature float64, softmax bool) []T {
	m.checkInputs(x, n)
	return m.from(0, x, n, ws, temperature, softmax)
}

// checkInputs panics unless x holds the inputs of n examples.
func (m *MLP[T]) checkInputs(x []T, n int) {
	if len(x) < n*m.Inputs() {
		panic(fmt.Sprintf("model: Forward: %d inputs for %d examples of %d", len(x), n, m.Inputs()))
	}
}

// from runs the layers from the i-th on, in holding the n rows of the i-th layer's inputs.
func (m *MLP[T]) from(i int, in []T, n int, ws *Workspace[T], temperature float64, softmax bool) []T {
	for ; i < len(m.Layers); i++ {
		l := m.Layers[i]
		out := m.biases(i, n, ws)
		MatMul(false, false, n, l.Out, l.In, in, l.In, l.W, l.Out, 1, out, l.Out, ws.Serial)
		m.finish(i, out, n, temperature, softmax)
		in = out
	}
	return ws.Outputs[len(m.Layers)-1]
}

// biases returns the workspace's output of layer i for n rows, each row holding the layer's biases, for the product
// to add to.
func (m *MLP[T]) biases(i, n int, ws *Workspace[T]) []T {
	l := m.Layers[i]
	out := ws.output(i, n*l.Out)
	for r := range n {
		copy(out[r*l.Out:(r+1)*l.Out], l.B)
	}
	return out
}

// finish applies the activation of layer i to its output: the hidden activation, or for the output layer the
// temperature and the softmax when softmax is set.
func (m *MLP[T]) finish(i int, out []T, n int, temperature float64, softmax bool) {
	switch {
	case i < len(m.Layers)-1:
		Apply(m.Activation, out)
	case !softmax:
	default:
		if temperature != 1 {
			inv := T(1 / temperature)
			for j := range out {
				out[j] *= inv
			}
		}
		Softmax(out, n, m.Layers[i].Out)
	}
}

// MatMul computes C = op(A)·op(B) + beta·C on row-major matrices (op transposes when asked). float32 goes to our
// SIMD kernel, float64 to gonum's BLAS. serial keeps the work on the calling goroutine.
func MatMul[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, serial bool) {
	switch a := any(a).(type) {
	case []float32:
		b, c := any(b).([]float32), any(c).([]float32)
		if serial {
			gemm.SgemmSerial(transA, transB, m, n, k, 1, a, lda, b, ldb, float32(beta), c, ldc)
		} else {
			gemm.Sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, float32(beta), c, ldc)
		}
	case []float64:
		b, c := any(b).([]float64), any(c).([]float64)
		tA, tB := blas.NoTrans, blas.NoTrans
		if transA {
			tA = blas.Trans
		}
		if transB {
			tB = blas.Trans
		}
		ra, ca := m, k
		if transA {
			ra, ca = k, m
		}
		rb, cb := k, n
		if transB {
			rb, cb = n, k
		}
		blas64.Gemm(tA, tB, 1,
			blas64.General{Rows: ra, Cols: ca, Stride: lda, Data: a},
			blas64.General{Rows: rb, Cols: cb, Stride: ldb, Data: b},
			float64(beta), blas64.General{Rows: m, Cols: n, Stride: ldc, Data: c})
	default:
		panic("model: MatMul: unsupported element type")
	}
}
