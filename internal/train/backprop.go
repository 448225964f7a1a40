package train

import (
	"math"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// Backprop computes losses and gradients of an MLP. It owns the scratch memory of one pass, reused across calls, so a
// Backprop belongs to one goroutine.
type Backprop[T model.Float] struct {
	// Serial keeps the matrix products on the calling goroutine (one core).
	Serial bool

	ws     model.Workspace[T]
	deltas [][]T
	grad   model.MLP[T] // views of the gradient vector, laid out like the network
}

func (b *Backprop[T]) delta(i, size int) []T {
	for len(b.deltas) <= i {
		b.deltas = append(b.deltas, nil)
	}
	if cap(b.deltas[i]) < size {
		b.deltas[i] = make([]T, size)
	}
	return b.deltas[i][:size]
}

// Gradient runs the batch of n examples x (n rows of m.Inputs() values) with class labels y forward and back. It
// writes the gradient of the mean cross-entropy loss plus l2/2·Σw² (weights only, not biases) into grad, laid out like
// m.Params, and returns that loss and how many examples the network classified correctly.
func (b *Backprop[T]) Gradient(m *model.MLP[T], x []T, y []uint8, n int, l2 float64, grad []T) (loss float64, correct int) {
	b.ws.Serial = b.Serial
	probs := m.Forward(x, n, &b.ws)
	classes := m.Classes()
	last := len(m.Layers) - 1

	// Softmax with cross-entropy has the gradient (p - onehot(y)) / n with respect to the logits.
	d := b.delta(last, n*classes)
	inv := 1 / T(n)
	for i := range n {
		row := probs[i*classes : (i+1)*classes]
		if model.Argmax(row) == int(y[i]) {
			correct++
		}
		loss -= math.Log(max(float64(row[y[i]]), 1e-30))
		drow := d[i*classes : (i+1)*classes]
		for j, p := range row {
			drow[j] = p * inv
		}
		drow[y[i]] -= inv
	}
	loss /= float64(n)

	g := &b.grad
	g.Sizes = m.Sizes
	g.Bind(grad)
	for l := last; l >= 0; l-- {
		layer, gl := m.Layers[l], g.Layers[l]
		in := x
		if l > 0 {
			in = b.ws.Outputs[l-1]
		}
		// dW = inᵀ·delta, db = column sums of delta.
		model.MatMul(true, false, layer.In, layer.Out, n, in, layer.In, d, layer.Out, 0, gl.W, layer.Out, b.Serial)
		clear(gl.B)
		for i := range n {
			for j, v := range d[i*layer.Out : (i+1)*layer.Out] {
				gl.B[j] += v
			}
		}
		if l2 > 0 {
			var sq float64
			c := T(l2)
			for i, w := range layer.W {
				gl.W[i] += c * w
				sq += float64(w) * float64(w)
			}
			loss += l2 / 2 * sq
		}
		if l > 0 {
			// delta of the layer below = (delta·Wᵀ) ⊙ act'(its output).
			prev := b.delta(l-1, n*layer.In)
			model.MatMul(false, true, n, layer.In, layer.Out, d, layer.Out, layer.W, layer.Out, 0, prev, layer.In, b.Serial)
			model.MulDerivative(m.Activation, prev, in)
			d = prev
		}
	}
	return loss, correct
}

// Loss returns the mean cross-entropy plus the L2 term of a batch, by a forward pass only.
func (b *Backprop[T]) Loss(m *model.MLP[T], x []T, y []uint8, n int, l2 float64) float64 {
	b.ws.Serial = b.Serial
	probs := m.Forward(x, n, &b.ws)
	classes := m.Classes()
	var loss float64
	for i := range n {
		loss -= math.Log(max(float64(probs[i*classes+int(y[i])]), 1e-30))
	}
	loss /= float64(n)
	if l2 > 0 {
		var sq float64
		for _, l := range m.Layers {
			for _, w := range l.W {
				sq += float64(w) * float64(w)
			}
		}
		loss += l2 / 2 * sq
	}
	return loss
}
