package model

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// gatedNetwork is a 4-3-2 network with a 4-2-2 gate of random weights.
func gatedNetwork(t *testing.T) *Network {
	t.Helper()
	n, err := New(Info{Name: "g", Layers: []int{4, 3, 2}, Activation: ReLU, Labels: []string{"a", "b"},
		Input: Input{Width: 2, Height: 2, Preprocess: PreprocessMNIST}}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMLP[float32]([]int{4, 2, 2}, Tanh)
	m.Init(rand.New(rand.NewPCG(3, 4)))
	n.SetGate(&Gate{Threshold: 0.5, HeldOutRejected: 0.01, Digits: 10, NonDigits: 12, Seed: 3}, m)
	return n
}

func TestGateScoresAreTheGateNetworksNotADigitProbability(t *testing.T) {
	n := gatedNetwork(t)
	x := []float32{0, 0.5, 1, 0.25, 1, 1, 0, 0, 0.1, 0.9, 0.3, 0.7}
	var ws Workspace[float32]
	probs := slices.Clone(n.Forward(x, 3, &ws))
	scores := n.NotDigitScores(nil, x, 3, &ws)
	if len(scores) != 3 {
		t.Fatalf("%d scores for 3 rows", len(scores))
	}
	var alone Workspace[float32]
	for r := range 3 {
		// The gate by hand: tanh(x·W1 + b1)·W2 + b2, then the softmax's second value.
		g := n.GateMLP
		h := make([]float64, 2)
		for j := range 2 {
			h[j] = float64(g.Layers[0].B[j])
			for i := range 4 {
				h[j] += float64(x[r*4+i]) * float64(g.Layers[0].W[i*2+j])
			}
			h[j] = math.Tanh(h[j])
		}
		z := make([]float64, 2)
		for j := range 2 {
			z[j] = float64(g.Layers[1].B[j])
			for i := range 2 {
				z[j] += h[i] * float64(g.Layers[1].W[i*2+j])
			}
		}
		want := 1 / (1 + math.Exp(z[0]-z[1]))
		if math.Abs(float64(scores[r])-want) > 1e-5 {
			t.Errorf("row %d: score %v, want %v", r, scores[r], want)
		}
		// The digit network's answer is what it is without the gate.
		if got := n.Forward(x[r*4:(r+1)*4], 1, &alone); !slices.Equal(got, probs[r*2:(r+1)*2]) {
			t.Errorf("row %d: probabilities %v beside the gate, %v alone", r, probs[r*2:(r+1)*2], got)
		}
	}
	if !n.Gate.NotADigit(0.51) || n.Gate.NotADigit(0.5) || n.Gate.NotADigit(float32(math.NaN())) {
		t.Error("NotADigit does not compare with the threshold")
	}
	n.SetGate(nil, nil)
	if n.NotDigitScores(nil, x, 3, &ws) != nil || n.Gate.NotADigit(1) {
		t.Error("a network without a gate gave gate scores")
	}
}

func TestGateTravelsInTheFileAndRenamesTheVersion(t *testing.T) {
	n := gatedNetwork(t)
	plain := n.Clone()
	plain.SetGate(nil, nil)
	if plain.Version == n.Version {
		t.Errorf("the same version %s with and without a gate", n.Version)
	}
	other := n.Clone()
	g := *n.Gate
	g.Threshold = 0.6
	other.SetGate(&g, other.GateMLP)
	if other.Version == n.Version {
		t.Errorf("the same version %s with the gate's threshold at 0.5 and 0.6", n.Version)
	}
	data, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Gate == nil || !slices.Equal(back.GateMLP.Params, n.GateMLP.Params) || !slices.Equal(back.MLP.Params, n.MLP.Params) ||
		back.Gate.Threshold != n.Gate.Threshold || !slices.Equal(back.Gate.Layers, n.Gate.Layers) || back.Gate.Activation != Tanh {
		t.Fatalf("gate changed through the file: %+v", back.Gate)
	}
	again, _ := Marshal(back)
	if !bytes.Equal(again, data) {
		t.Error("a decoded gated model encodes to other bytes")
	}
	c := n.Clone()
	c.GateMLP.Params[0]++
	if n.GateMLP.Params[0] == c.GateMLP.Params[0] {
		t.Error("Clone shares the gate's weights")
	}

	// A file without a gate keeps its bytes: the header has no gate and the body only the digit network.
	pdata, _ := Marshal(plain)
	if bytes.Contains(pdata, []byte(`"gate"`)) || len(data)-len(pdata) <= 4*ParamCount([]int{4, 2, 2}) {
		t.Error("a model without a gate is stored with one")
	}
}

func TestGateIsRefusedWhenItCannotServe(t *testing.T) {
	for name, spoil := range map[string]func(n *Network){
		"wrong input size":  func(n *Network) { n.Gate.Layers = []int{5, 2, 2} },
		"three outputs":     func(n *Network) { n.Gate.Layers = []int{4, 2, 3} },
		"threshold 1":       func(n *Network) { n.Gate.Threshold = 1 },
		"threshold NaN":     func(n *Network) { n.Gate.Threshold = math.NaN() },
		"header only":       func(n *Network) { n.GateMLP = nil },
		"network only":      func(n *Network) { n.Gate = nil },
		"sizes disagree":    func(n *Network) { n.GateMLP = NewMLP[float32]([]int{4, 3, 2}, Tanh) },
		"unknown activator": func(n *Network) { n.Gate.Activation = 0 },
	} {
		n := gatedNetwork(t)
		spoil(n)
		if _, err := Marshal(n); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}

	// A gate weight that is not finite is refused when the file is read, as the digit network's are.
	n := gatedNetwork(t)
	n.GateMLP.Params[3] = float32(math.Inf(1))
	data, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "parameter") {
		t.Errorf("infinite gate weight: %v, want ErrFormat", err)
	}
}
