package train

import (
	"math"
	"runtime"
	"sync"
)

// optimizer updates a flat parameter vector from its gradient.
type optimizer interface {
	step(params, grad []float32)
}

// sgd is stochastic gradient descent with (heavy-ball) momentum: v = μv + g; p -= lr·v.
type sgd struct {
	lr, mu float32
	serial bool
	v      []float32
}

func (o *sgd) step(params, grad []float32) {
	if o.v == nil {
		o.v = make([]float32, len(params))
	}
	parallelFor(len(params), o.serial, func(lo, hi int) {
		p, g, v := params[lo:hi], grad[lo:hi], o.v[lo:hi]
		for i := momentumVec(p, g, v, o.mu, o.lr); i < len(p); i++ {
			v[i] = o.mu*v[i] + g[i]
			p[i] -= o.lr * v[i]
		}
	})
}

// adam is Adam (Kingma & Ba) with bias correction, the defaults β1=0.9, β2=0.999, ε=1e-8.
type adam struct {
	lr, b1, b2, eps float64
	serial          bool
	t               int
	m, v            []float32
}

func newAdam(lr float64, serial bool) *adam {
	return &adam{lr: lr, b1: 0.9, b2: 0.999, eps: 1e-8, serial: serial}
}

func (o *adam) step(params, grad []float32) {
	if o.m == nil {
		o.m, o.v = make([]float32, len(params)), make([]float32, len(params))
	}
	o.t++
	// Fold the bias corrections into the step size and epsilon, so the loop does one sqrt and one divide.
	c1 := 1 - math.Pow(o.b1, float64(o.t))
	c2 := 1 - math.Pow(o.b2, float64(o.t))
	lr := float32(o.lr * math.Sqrt(c2) / c1)
	eps := float32(o.eps * math.Sqrt(c2))
	b1, b2 := float32(o.b1), float32(o.b2)
	parallelFor(len(params), o.serial, func(lo, hi int) {
		p, g, m, v := params[lo:hi], grad[lo:hi], o.m[lo:hi], o.v[lo:hi]
		for i := adamVec(p, g, m, v, b1, b2, lr, eps); i < len(p); i++ {
			gi := g[i]
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			p[i] -= lr * mi / (float32(math.Sqrt(float64(vi))) + eps)
		}
	})
}

// parallelMin is the smallest slice worth splitting across goroutines for an element-wise update.
const parallelMin = 32 << 10

// parallelFor runs f over [0,n) in contiguous chunks, one per core, or serially when n is small or serial is set. Chunks start at
// multiples of 64 so the vector loops and their scalar tails cover the same elements whatever the core count, and a
// training run gives the same weights on any number of cores.
func parallelFor(n int, serial bool, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 || serial {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := ((n+workers-1)/workers + 63) &^ 63
	for lo := chunk; lo < n; lo += chunk {
		wg.Go(func() { f(lo, min(lo+chunk, n)) })
	}
	f(0, min(chunk, n))
	wg.Wait()
}
