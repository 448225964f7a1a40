package model

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
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

// TestForwardGatedIsForwardThenTheGateBitForBit checks that ForwardGated gives bit for bit the probabilities of
// Forward and the scores of NotDigitScores run one after the other, and leaves the same hidden activations in the
// workspace (Distances reads them): for the default model on real MNIST digits, and for random networks and gates of
// other shapes (widths that are not multiples of 64, one layer, tanh and sigmoid gates), on dense rows, mostly zero
// rows, and rows and weights holding -0, NaN, infinities and subnormals, in batches of one to seventeen.
func TestForwardGatedIsForwardThenTheGateBitForBit(t *testing.T) {
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if def.GateMLP == nil {
		t.Fatal("the default model has no gate")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	specials := []float32{float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -1e-45}
	type shape struct {
		digit, gate []int
		act         Activation
	}
	type named struct {
		name string
		net  *Network
	}
	nets := []named{{"default", def}}
	for i, sh := range []shape{
		{[]int{784, 100, 10}, []int{784, 50, 2}, Sigmoid},
		{[]int{784, 64, 10}, []int{784, 200, 30, 2}, Tanh},
		{[]int{784, 10}, []int{784, 2}, ReLU},
		{[]int{784, 128, 64, 10}, []int{784, 64, 2}, ReLU},
	} {
		n := &Network{Info: Info{Layers: sh.digit, Activation: ReLU}, MLP: randomNet(t, sh.digit, ReLU, uint64(i))}
		n.SetGate(&Gate{Threshold: 0.5}, randomNet(t, sh.gate, sh.act, uint64(i+10)))
		if i == 3 { // weights that zero inputs must not turn into NaN
			for range 50 {
				n.MLP.Layers[0].W[rng.IntN(len(n.MLP.Layers[0].W))] = specials[1+rng.IntN(3)]
				n.GateMLP.Layers[0].W[rng.IntN(len(n.GateMLP.Layers[0].W))] = specials[1+rng.IntN(3)]
			}
		}
		nets = append(nets, named{fmt.Sprint(sh.digit, sh.gate), n})
	}
	set := mnisttest.Test(t)
	inputs := []struct {
		kind string
		fill func(x []float32)
	}{
		{"digits", func(x []float32) { set.Inputs(x, rng.IntN(1000)) }},
		{"dense", func(x []float32) { copy(x, randomInputs(1, len(x), rng.Uint64())) }},
		{"special values", func(x []float32) {
			clear(x)
			for i := range x {
				switch rng.IntN(10) {
				case 0:
					x[i] = specials[rng.IntN(len(specials))]
				case 1, 2:
					x[i] = rng.Float32()
				}
			}
		}},
	}
	same := func(a, b []float32) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
				return false
			}
		}
		return true
	}
	for _, nn := range nets {
		name, net := nn.name, nn.net
		for _, in := range inputs {
			kind, fill := in.kind, in.fill
			for _, batch := range []int{1, 2, 3, 5, 8, 16, 17} {
				x := make([]float32, batch*784)
				for r := range batch {
					fill(x[r*784 : (r+1)*784])
				}
				apart := Workspace[float32]{Serial: true}
				wantProbs := slices.Clone(net.Forward(x, batch, &apart))
				wantScores := net.NotDigitScores([]float32{7}, x, batch, &apart)
				for _, serial := range []bool{true, false} {
					together := Workspace[float32]{Serial: serial}
					probs, scores := net.ForwardGated(x, batch, &together, []float32{7})
					if !same(probs, wantProbs) || !same(scores, wantScores) {
						t.Fatalf("%s, %s, batch %d, serial %v: ForwardGated gives %v %v; Forward and NotDigitScores %v %v",
							name, kind, batch, serial, probs, scores, wantProbs, wantScores)
					}
					for i := range apart.Outputs {
						if !same(together.Outputs[i], apart.Outputs[i]) {
							t.Fatalf("%s, %s, batch %d, serial %v: layer %d's outputs differ", name, kind, batch, serial, i)
						}
					}
				}
			}
		}
	}
}
