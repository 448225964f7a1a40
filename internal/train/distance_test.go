package train

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestFeatureDistanceThresholdRejectsTheGivenShare fits the feature distance of the embedded model on a slice of
// MNIST's training images and checks what it promises: the threshold leaves out the given share of the correctly
// classified held-out images, and the whitened means give the same distance as the textbook formula with the covariance estimated directly.
func TestFeatureDistanceThresholdRejectsTheGivenShare(t *testing.T) {
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	set := mnisttest.Train(t)
	fit, val := set.Head(4000), set.Subset(seq(4000, 6000))
	const reject = 0.05
	f, err := FitFeatureDistance(net, fit, val, reject, false)
	if err != nil {
		t.Fatal(err)
	}
	net.FeatureDistance = f
	if _, err := model.Marshal(net); err != nil {
		t.Fatalf("the fitted feature distance does not pass the model's checks: %v", err)
	}
	correct, beyond := 0, 0
	u := make([]float64, net.LastHidden())
	activationsAndLogits(net, len(net.Layers)-3, val, false, func(i int, h, z []float32) {
		if model.Argmax(z) == int(val.Y[i]) {
			correct++
			if f.Distance(h, u) > f.Threshold {
				beyond++
			}
		}
	})
	if got := float64(beyond) / float64(correct); math.Abs(got-reject) > 0.005 {
		t.Errorf("%d of %d correct held-out images beyond the threshold (%.3f); want %.3f", beyond, correct, got, reject)
	}

	// The textbook formula, with the covariance estimated directly: min over classes of √((h−μ)ᵀ·Σ⁻¹·(h−μ)).
	hidden := net.LastHidden()
	var rows [][]float64
	var ys []int
	activations(net, len(net.Layers)-3, fit, false, func(i int, h []float32) {
		r := make([]float64, hidden)
		for a, v := range h {
			r[a] = float64(v)
		}
		rows, ys = append(rows, r), append(ys, int(fit.Y[i]))
	})
	means := make([][]float64, 10)
	counts := make([]float64, 10)
	for c := range means {
		means[c] = make([]float64, hidden)
	}
	for i, r := range rows {
		counts[ys[i]]++
		floats.Add(means[ys[i]], r)
	}
	for c := range means {
		floats.Scale(1/counts[c], means[c])
	}
	sigma := mat.NewSymDense(hidden, nil)
	d := make([]float64, hidden)
	for i, r := range rows {
		floats.SubTo(d, r, means[ys[i]])
		sigma.SymRankOne(sigma, 1/float64(len(rows)), mat.NewVecDense(hidden, d))
	}
	ridge := covarianceRidge*mat.Trace(sigma)/float64(hidden) + 1e-9
	for a := range hidden {
		sigma.SetSym(a, a, sigma.At(a, a)+ridge)
	}
	var inv mat.Dense
	if err := inv.Inverse(sigma); err != nil {
		t.Fatal(err)
	}
	activations(net, len(net.Layers)-3, val.Head(20), false, func(i int, h []float32) {
		want := math.Inf(1)
		for c := range means {
			for a := range hidden {
				d[a] = float64(h[a]) - means[c][a]
			}
			v := mat.NewVecDense(hidden, d)
			want = min(want, math.Sqrt(mat.Inner(v, &inv, v)))
		}
		if got := f.Distance(h, u); math.Abs(got-want) > 1e-4*want {
			t.Errorf("held-out image %d: distance %v; the formula gives %v", i, got, want)
		}
	})
}

func seq(lo, hi int) []int {
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return idx
}
