package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// smallNetwork is a 4-3-2 network with a feature distance whose whitening is the inverse Cholesky factor of a known
// covariance.
func smallNetwork(t *testing.T) *Network {
	t.Helper()
	n, err := New(Info{Name: "d", Layers: []int{4, 3, 2}, Activation: ReLU, Labels: []string{"a", "b"},
		Input: Input{Width: 2, Height: 2, Preprocess: PreprocessMNIST}}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	// C = [[2,0,0],[1,1,0],[0,0.5,0.5]], so C⁻¹ = [[0.5,0,0],[-0.5,1,0],[0.5,-1,2]].
	n.FeatureDistance = &FeatureDistance{
		Whitening: []float64{0.5, -0.5, 1, 0.5, -1, 2},
		Means:     [][]float64{{0, 0, 0}, {1, 1, 1}},
		Threshold: 3,
		Examples:  10,
	}
	return n
}

func TestDistanceIsTheMahalanobisDistanceToTheNearestClass(t *testing.T) {
	n := smallNetwork(t)
	f := n.FeatureDistance
	// Σ = C·Cᵀ; the whitened means are C⁻¹·μ, so class 0's mean is 0 and class 1's is C·(1,1,1).
	c := [3][3]float64{{2, 0, 0}, {1, 1, 0}, {0, 0.5, 0.5}}
	var sigma [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				sigma[i][j] += c[i][k] * c[j][k]
			}
		}
	}
	mu1 := [3]float64{c[0][0] + c[0][1] + c[0][2], c[1][0] + c[1][1] + c[1][2], c[2][0] + c[2][1] + c[2][2]}
	mahalanobis := func(h, mu [3]float64) float64 {
		// Solve Σ·x = h−μ by Cramer's rule on the 3x3 system.
		d := [3]float64{h[0] - mu[0], h[1] - mu[1], h[2] - mu[2]}
		det := func(m [3][3]float64) float64 {
			return m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) - m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) + m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
		}
		var q float64
		for k := range 3 {
			m := sigma
			for i := range 3 {
				m[i][k] = d[i]
			}
			q += d[k] * det(m) / det(sigma)
		}
		return math.Sqrt(q)
	}
	u := make([]float64, 3)
	for _, h := range [][3]float64{{0, 0, 0}, {1, 2, 3}, {2, 1.5, 1}, {0.3, 0, 4}} {
		want := min(mahalanobis(h, [3]float64{}), mahalanobis(h, mu1))
		got := f.Distance([]float32{float32(h[0]), float32(h[1]), float32(h[2])}, u)
		if math.Abs(got-want) > 1e-5*max(1, want) {
			t.Errorf("distance of %v: got %v; want %v", h, got, want)
		}
	}
}

func TestDistancesFollowForward(t *testing.T) {
	n := smallNetwork(t)
	x := []float32{1, 0, 0.5, 0.2, 0, 0, 0, 0}
	var ws Workspace[float32]
	n.Forward(x, 2, &ws)
	got := n.Distances(nil, 2, &ws)
	u := make([]float64, 3)
	for r := range 2 {
		want := float32(n.FeatureDistance.Distance(ws.Outputs[0][r*3:(r+1)*3], u))
		if len(got) != 2 || got[r] != want {
			t.Fatalf("Distances %v; row %d want %v", got, r, want)
		}
	}
	n.FeatureDistance = nil
	if d := n.Distances(nil, 2, &ws); d != nil {
		t.Errorf("a network without a feature distance: %v; want nil", d)
	}
}

func TestAFileWithABrokenFeatureDistanceIsRefused(t *testing.T) {
	for name, breakIt := range map[string]func(f *FeatureDistance){
		"a negative diagonal":    func(f *FeatureDistance) { f.Whitening[2] = -1 },
		"a short whitening":      func(f *FeatureDistance) { f.Whitening = f.Whitening[:5] },
		"a NaN mean":             func(f *FeatureDistance) { f.Means[1][0] = math.NaN() },
		"a missing class mean":   func(f *FeatureDistance) { f.Means = f.Means[:1] },
		"a mean of another size": func(f *FeatureDistance) { f.Means[0] = f.Means[0][:2] },
		"a zero threshold":       func(f *FeatureDistance) { f.Threshold = 0 },
		"an infinite threshold":  func(f *FeatureDistance) { f.Threshold = math.Inf(1) },
	} {
		t.Run(name, func(t *testing.T) {
			n := smallNetwork(t)
			good, err := Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := Unmarshal(good); err != nil || back.FeatureDistance.Threshold != 3 {
				t.Fatalf("round trip: %v", err)
			}
			breakIt(n.FeatureDistance)
			if _, err := Marshal(n); err == nil || !strings.Contains(err.Error(), "feature distance") {
				t.Errorf("encode: %v; want an error about the feature distance", err)
			}
		})
	}
}
