package model

import (
	"fmt"
	"math"
)

// FeatureDistance tells inputs unlike the training data from the ones the network knows, by the Mahalanobis
// distance of the last hidden layer's activations to the nearest class (Lee et al. 2018, "A simple unified
// framework for detecting out-of-distribution samples"): the activations of each class of the training data are
// modelled as a Gaussian with its own mean and a covariance shared by all classes. A letter or two digits side by
// side may get a confident softmax, but their activations lie far from every class's cloud.
//
// The parameters are stored whitened, so serving needs one triangular product per row and one short distance per
// class: with Σ = C·Cᵀ the Cholesky factorisation of the shared covariance, Whitening is C⁻¹ (lower triangular, its
// diagonal positive) and Means holds C⁻¹·μ for each class mean μ; the squared Mahalanobis distance of activations h
// to a class is then |C⁻¹·h − C⁻¹·μ|².
type FeatureDistance struct {
	// Layer is the hidden layer whose activations are measured, 0 for the first.
	Layer int `json:"layer"`
	// Whitening is the lower triangle of C⁻¹, row by row: row i holds its i+1 values from column 0 to i.
	Whitening []float64 `json:"whitening"`
	// Means are the whitened class means, one row of hidden-layer size per class.
	Means [][]float64 `json:"means"`
	// Threshold is the distance (not squared) above which an input is not taken for a digit of any class. It is
	// chosen on held-out data so that a small share of the correctly classified examples exceed it.
	Threshold float64 `json:"threshold"`
	// Examples is how many training examples the means and covariance were estimated from.
	Examples int `json:"examples"`
}

// LastHidden returns the size of the last hidden layer, or 0 for a network without one.
func (info *Info) LastHidden() int {
	if len(info.Layers) < 3 {
		return 0
	}
	return info.Layers[len(info.Layers)-2]
}

// check reports why f cannot serve a network whose last hidden layer has hidden units and which has classes classes.
func (f *FeatureDistance) check(hidden, classes int) error {
	if hidden == 0 {
		return fmt.Errorf("feature distance on a network without a hidden layer")
	}
	if len(f.Whitening) != hidden*(hidden+1)/2 {
		return fmt.Errorf("feature distance: %d whitening values for a hidden layer of %d", len(f.Whitening), hidden)
	}
	for i := range hidden {
		if d := f.Whitening[i*(i+1)/2+i]; !(d > 0) {
			return fmt.Errorf("feature distance: whitening diagonal %d is %v, not positive", i, d)
		}
	}
	for i, v := range f.Whitening {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("feature distance: whitening value %d is %v", i, v)
		}
	}
	if len(f.Means) != classes {
		return fmt.Errorf("feature distance: %d class means for %d classes", len(f.Means), classes)
	}
	for c, m := range f.Means {
		if len(m) != hidden {
			return fmt.Errorf("feature distance: class mean %d has %d values for a hidden layer of %d", c, len(m), hidden)
		}
		for _, v := range m {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("feature distance: class mean %d holds %v", c, v)
			}
		}
	}
	if !(f.Threshold > 0) || math.IsInf(f.Threshold, 0) {
		return fmt.Errorf("feature distance: threshold %v, want a positive finite number", f.Threshold)
	}
	if f.Examples < 0 {
		return fmt.Errorf("feature distance: %d examples", f.Examples)
	}
	return nil
}

// Distance returns the Mahalanobis distance of one row of last-hidden-layer activations h to the nearest class.
// u is scratch of len(h) values.
func (f *FeatureDistance) Distance(h []float32, u []float64) float64 {
	n := len(h)
	for i := range n {
		row := f.Whitening[i*(i+1)/2 : i*(i+1)/2+i+1]
		var s float64
		for j, w := range row {
			s += w * float64(h[j])
		}
		u[i] = s
	}
	best := math.Inf(1)
	for _, m := range f.Means {
		var d float64
		for i, v := range m {
			e := u[i] - v
			d += e * e
		}
		best = min(best, d)
	}
	return math.Sqrt(best)
}

// Distances writes into dst, for each of the batch rows of the last Forward through ws, its feature distance (see
// FeatureDistance), and returns dst; nil when the network has none. It reads the hidden activations Forward left
// in ws, so it must follow that Forward with the same workspace.
func (n *Network) Distances(dst []float32, batch int, ws *Workspace[float32]) []float32 {
	f := n.Info.FeatureDistance
	if f == nil {
		return nil
	}
	hidden := n.Layers[f.Layer+1]
	acts := ws.Outputs[f.Layer][:batch*hidden]
	if cap(ws.scratch) < hidden {
		ws.scratch = make([]float64, hidden)
	}
	u := ws.scratch[:hidden]
	for r := range batch {
		dst = append(dst, float32(f.Distance(acts[r*hidden:(r+1)*hidden], u)))
	}
	return dst
}
