package train

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// DefaultRejectInDistribution is the share of the held-out examples the network classifies correctly whose feature
// distance may exceed the threshold: the threshold is that quantile of their distances. Uploads of real digits
// come from other hands than the training data and are cropped and centred again, so more of them lie beyond the
// threshold than of the held-out split; the share is kept at half of the service's 1% for that.
const DefaultRejectInDistribution = 0.005

// covarianceRidge is added, as a share of the mean variance, to the diagonal of the shared covariance. A ReLU unit
// that no training example activates has no variance at all, which would make the covariance singular and every
// input that wakes that unit infinitely far; the ridge bounds how much one such unit can count.
const covarianceRidge = 0.0001

// FitFeatureDistance estimates the class-conditional Gaussians of net's last hidden layer (one mean per class, one
// covariance shared by all: Lee et al. 2018) on fit, the training examples, and chooses the threshold on val, the
// held-out ones, so that a share reject of those net classifies correctly lie beyond it (see
// model.FeatureDistance). It does not change net. The result depends only on net and the data, so it is the same on
// every run.
func FitFeatureDistance(net *model.Network, fit, val *dataset.Set, reject float64, serial bool) (*model.FeatureDistance, error) {
	return fitFeatureDistance(net, len(net.Layers)-3, fit, val, reject, serial)
}

func fitFeatureDistance(net *model.Network, layer int, fit, val *dataset.Set, reject float64, serial bool) (*model.FeatureDistance, error) {
	if layer < 0 {
		return nil, fmt.Errorf("feature distance: the network has no hidden layer")
	}
	hidden, classes := net.Layers[layer+1], net.MLP.Classes()
	if hidden == 0 {
		return nil, fmt.Errorf("feature distance: the network has no hidden layer")
	}
	for _, s := range []*dataset.Set{fit, val} {
		if s.Features() != net.MLP.Inputs() || len(s.Classes) > classes {
			return nil, fmt.Errorf("feature distance: data set of %d classes of %d inputs does not fit a network of %d classes of %d inputs",
				len(s.Classes), s.Features(), classes, net.MLP.Inputs())
		}
	}

	// Class sums, then the pooled within-class scatter Σ (h-μ_y)(h-μ_y)ᵀ = Σ h·hᵀ − Σ_c n_c·μ_c·μ_cᵀ.
	sums := make([][]float64, classes)
	for c := range sums {
		sums[c] = make([]float64, hidden)
	}
	counts := make([]int, classes)
	scatter := make([]float64, hidden*hidden)
	activations(net, layer, fit, serial, func(i int, h []float32) {
		y := int(fit.Y[i])
		counts[y]++
		for a, va := range h {
			sums[y][a] += float64(va)
			if va == 0 {
				continue
			}
			row := scatter[a*hidden : a*hidden+a+1]
			for b := range row {
				row[b] += float64(va) * float64(h[b])
			}
		}
	})
	if fit.Len() == 0 {
		return nil, fmt.Errorf("feature distance: no training examples")
	}
	means := make([][]float64, classes)
	for c := range means {
		means[c] = make([]float64, hidden)
		if counts[c] == 0 {
			// A class the data never shows cannot be modelled; its mean is put out of reach.
			for a := range means[c] {
				means[c][a] = math.MaxFloat32
			}
			continue
		}
		for a := range hidden {
			means[c][a] = sums[c][a] / float64(counts[c])
		}
		for a := range hidden {
			for b := 0; b <= a; b++ {
				scatter[a*hidden+b] -= float64(counts[c]) * means[c][a] * means[c][b]
			}
		}
	}
	cov := mat.NewSymDense(hidden, nil)
	var trace float64
	for a := range hidden {
		trace += scatter[a*hidden+a] / float64(fit.Len())
	}
	ridge := covarianceRidge*trace/float64(hidden) + 1e-9
	for a := range hidden {
		for b := 0; b <= a; b++ {
			v := scatter[a*hidden+b] / float64(fit.Len())
			if a == b {
				v = max(v, 0) + ridge
			}
			cov.SetSym(a, b, v)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(cov) {
		return nil, fmt.Errorf("feature distance: the covariance of the hidden layer is not positive definite")
	}
	var l, w mat.TriDense
	chol.LTo(&l)
	if err := w.InverseTri(&l); err != nil {
		return nil, fmt.Errorf("feature distance: %v", err)
	}
	f := &model.FeatureDistance{Layer: layer, Whitening: make([]float64, 0, hidden*(hidden+1)/2), Examples: fit.Len()}
	for a := range hidden {
		for b := 0; b <= a; b++ {
			f.Whitening = append(f.Whitening, w.At(a, b))
		}
	}
	f.Means = make([][]float64, classes)
	for c := range classes {
		f.Means[c] = make([]float64, hidden)
		if counts[c] == 0 {
			for a := range hidden {
				f.Means[c][a] = math.MaxFloat32
			}
			continue
		}
		for a := range hidden {
			var s float64
			for b := 0; b <= a; b++ {
				s += w.At(a, b) * means[c][b]
			}
			f.Means[c][a] = s
		}
	}

	// The threshold: the (1 − reject) quantile of the held-out correct examples' distances, rounded up.
	var dists []float64
	u := make([]float64, hidden)
	probs := make([]float32, 0, classes)
	activationsAndLogits(net, layer, val, serial, func(i int, h, z []float32) {
		probs = append(probs[:0], z...)
		if model.Argmax(probs) == int(val.Y[i]) {
			dists = append(dists, f.Distance(h, u))
		}
	})
	if len(dists) == 0 {
		return nil, fmt.Errorf("feature distance: no held-out example is classified correctly")
	}
	slices.Sort(dists)
	q := dists[min(len(dists)-1, int((1-reject)*float64(len(dists))))]
	f.Threshold = math.Ceil(q*1e4) / 1e4
	return f, nil
}

// activations calls fn with the last hidden layer's activations of every example of s, in order.
func activations(net *model.Network, layer int, s *dataset.Set, serial bool, fn func(i int, h []float32)) {
	activationsAndLogits(net, layer, s, serial, func(i int, h, _ []float32) { fn(i, h) })
}

// activationsAndLogits calls fn with the last hidden layer's activations and the output layer's values of every
// example of s, in order.
func activationsAndLogits(net *model.Network, layer int, s *dataset.Set, serial bool, fn func(i int, h, z []float32)) {
	f, hidden, classes := s.Features(), net.Layers[layer+1], net.MLP.Classes()
	ws := model.Workspace[float32]{Serial: serial}
	x := make([]float32, min(evalChunk, max(s.Len(), 1))*f)
	for lo := 0; lo < s.Len(); lo += evalChunk {
		hi := min(lo+evalChunk, s.Len())
		for i := lo; i < hi; i++ {
			s.Inputs(x[(i-lo)*f:(i-lo+1)*f], i)
		}
		z := net.MLP.Logits(x, hi-lo, &ws)
		acts := ws.Outputs[layer]
		for i := lo; i < hi; i++ {
			fn(i, acts[(i-lo)*hidden:(i-lo+1)*hidden], z[(i-lo)*classes:(i-lo+1)*classes])
		}
	}
}
