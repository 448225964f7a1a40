package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestOptimizerStepsMatchTheirFormulas checks both the vector and the portable loops against the textbook update
// in float64, over lengths that exercise the vector body and the scalar tail.
func TestOptimizerStepsMatchTheirFormulas(t *testing.T) {
	for _, vec := range []bool{true, false} {
		if vec && !hasAVX2 {
			continue
		}
		saved := hasAVX2
		hasAVX2 = vec
		t.Cleanup(func() { hasAVX2 = saved })
		for _, n := range []int{1, 7, 8, 9, 100, 70000} {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			p := make([]float32, n)
			for i := range p {
				p[i] = float32(rng.NormFloat64())
			}
			grads := make([][]float32, 3)
			for s := range grads {
				grads[s] = make([]float32, n)
				for i := range grads[s] {
					grads[s][i] = float32(rng.NormFloat64())
				}
			}

			// Adam, three steps.
			a := newAdam(0.01, false)
			pa := append([]float32(nil), p...)
			ref := make([]float64, n)
			m, v := make([]float64, n), make([]float64, n)
			for i := range ref {
				ref[i] = float64(p[i])
			}
			for s, g := range grads {
				a.step(pa, g)
				for i := range ref {
					gi := float64(g[i])
					m[i] = 0.9*m[i] + 0.1*gi
					v[i] = 0.999*v[i] + 0.001*gi*gi
					mh := m[i] / (1 - math.Pow(0.9, float64(s+1)))
					vh := v[i] / (1 - math.Pow(0.999, float64(s+1)))
					ref[i] -= 0.01 * mh / (math.Sqrt(vh) + 1e-8)
				}
			}
			for i := range ref {
				if d := math.Abs(float64(pa[i]) - ref[i]); d > 1e-5 {
					t.Fatalf("adam vec=%v n=%d: p[%d] = %v; want %v", vec, n, i, pa[i], ref[i])
				}
			}

			// SGD with momentum, three steps.
			o := &sgd{lr: 0.1, mu: 0.9}
			ps := append([]float32(nil), p...)
			vel := make([]float64, n)
			for i := range ref {
				ref[i] = float64(p[i])
			}
			for _, g := range grads {
				o.step(ps, g)
				for i := range ref {
					vel[i] = 0.9*vel[i] + float64(g[i])
					ref[i] -= 0.1 * vel[i]
				}
			}
			for i := range ref {
				if d := math.Abs(float64(ps[i]) - ref[i]); d > 1e-5 {
					t.Fatalf("sgd vec=%v n=%d: p[%d] = %v; want %v", vec, n, i, ps[i], ref[i])
				}
			}
		}
	}
}
