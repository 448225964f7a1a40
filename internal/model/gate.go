package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/perceptron-dev/perceptron/internal/gemm"
)

// Gate is a second, small network beside the digit network that tells digits from everything else people upload:
// a binary classifier ("digit", "not a digit") on the same input vector, trained on digits and on generated
// non-digits (letters, several digits side by side, scribbles, shapes, textures). The digit network cannot learn
// this: it was only ever shown digits, so it answers a letter with a confident digit. Its weights are stored in the
// model file after the digit network's (its layer sizes in the header say how many), so the digit network, and every
// probability it gives, is the same with or without a gate.
type Gate struct {
	// Layers are the gate network's sizes, the input size first and 2 last (digit, not a digit).
	Layers     []int      `json:"layers"`
	Activation Activation `json:"activation"`
	// Threshold is the probability of "not a digit" above which an input is answered not_a_digit. It is chosen on
	// held-out digits, so that a small share of them (HeldOutRejected) is turned away.
	Threshold       float64 `json:"threshold"`
	HeldOutRejected float64 `json:"held_out_rejected"`
	// Digits and NonDigits are how many examples of each kind the gate was trained on; Seed draws them again.
	Digits    int    `json:"digits"`
	NonDigits int    `json:"non_digits"`
	Seed      uint64 `json:"seed"`
}

// GateNotDigit is the gate network's output index of "not a digit".
const GateNotDigit = 1

// check reports why g cannot serve a network with inputs inputs.
func (g *Gate) check(inputs int) error {
	if err := CheckArchitecture(g.Layers); err != nil {
		return fmt.Errorf("gate: %v", err)
	}
	if g.Layers[0] != inputs {
		return fmt.Errorf("gate takes %d inputs, the network %d", g.Layers[0], inputs)
	}
	if g.Layers[len(g.Layers)-1] != 2 {
		return fmt.Errorf("gate has %d outputs, want 2", g.Layers[len(g.Layers)-1])
	}
	if _, ok := activationNames[g.Activation]; !ok {
		return fmt.Errorf("gate: invalid activation %d", g.Activation)
	}
	if !(g.Threshold > 0 && g.Threshold < 1) {
		return fmt.Errorf("gate threshold %v outside (0, 1)", g.Threshold)
	}
	if !(g.HeldOutRejected >= 0 && g.HeldOutRejected <= 1) || g.Digits < 0 || g.NonDigits < 0 {
		return fmt.Errorf("gate: held-out share %v, %d digits, %d non-digits", g.HeldOutRejected, g.Digits, g.NonDigits)
	}
	return nil
}

// gateParams is how many parameters the gate of info stores after the digit network's.
func (info *Info) gateParams() int {
	if info.Gate == nil {
		return 0
	}
	return ParamCount(info.Gate.Layers)
}

// NotDigitScores appends to dst, for each of the batch rows of x, the gate's probability that the row is not a digit,
// and returns dst; nil when the network has no gate. ws is the workspace of the digit network's Forward on the same
// rows; the gate keeps its own scratch inside it, so the digit network's outputs there stay as they were.
func (n *Network) NotDigitScores(dst []float32, x []float32, batch int, ws *Workspace[float32]) []float32 {
	if n.GateMLP == nil {
		return nil
	}
	return appendNotDigit(dst, n.GateMLP.Forward(x, batch, ws.gateWorkspace()), batch)
}

// gateWorkspace is the gate's scratch inside ws, the digit network's workspace, made the first time; it computes
// serially when ws does.
func (ws *Workspace[T]) gateWorkspace() *Workspace[T] {
	if ws.gate == nil {
		ws.gate = &Workspace[T]{}
	}
	ws.gate.Serial = ws.Serial
	return ws.gate
}

// appendNotDigit appends to dst the "not a digit" probability of each of the batch rows of the gate's output probs.
func appendNotDigit(dst, probs []float32, batch int) []float32 {
	for r := range batch {
		dst = append(dst, probs[2*r+GateNotDigit])
	}
	return dst
}

// ForwardGated is Forward followed by NotDigitScores on the same rows (appended to notDigit), computed together and
// bit for bit the same: the first layers of the digit network and of the gate read the same inputs, so on a serial
// workspace each row's list of nonzero inputs is made once for both (gemm.SgemmSerialPair). scores is nil when the
// network has no gate.
func (n *Network) ForwardGated(x []float32, batch int, ws *Workspace[float32], notDigit []float32) (probs, scores []float32) {
	d, g := n.MLP, n.GateMLP
	if g == nil || !ws.Serial || g.Inputs() != d.Inputs() {
		probs = n.Forward(x, batch, ws)
		return probs, n.NotDigitScores(notDigit, x, batch, ws)
	}
	d.checkInputs(x, batch)
	gws := ws.gateWorkspace()
	d0, g0 := d.Layers[0], g.Layers[0]
	outD, outG := d.biases(0, batch, ws), g.biases(0, batch, gws)
	gemm.SgemmSerialPair(batch, d0.In, x, d0.In, d0.W, d0.Out, outD, g0.W, g0.Out, outG, 1)
	d.finish(0, outD, batch, n.Temperature(), true)
	g.finish(0, outG, batch, 1, true)
	probs = d.from(1, outD, batch, ws, n.Temperature(), true)
	return probs, appendNotDigit(notDigit, g.from(1, outG, batch, gws, 1, true), batch)
}

// NotADigit reports whether score, a row's NotDigitScores value, is beyond the gate's threshold.
func (g *Gate) NotADigit(score float32) bool {
	return g != nil && float64(score) > g.Threshold && !math.IsNaN(float64(score))
}

// SetGate gives n the gate g with the weights of m (nil for both removes it), and renames its version (see
// VersionDigest): the gate changes answers, so a model with another gate is another version.
func (n *Network) SetGate(g *Gate, m *MLP[float32]) {
	if g != nil {
		g.Layers = slices.Clone(m.Sizes)
		g.Activation = m.Activation
	}
	n.Gate, n.GateMLP = g, m
	n.Version = NewVersion(n.Created, n.VersionDigest())
}

// VersionDigest returns the numbers a version's digest covers: the digit network's weights and, for a model with a
// gate, the gate's weights and its threshold (as float32), which decide its answers as much as the weights do.
func (n *Network) VersionDigest() []float32 {
	if n.GateMLP == nil || n.Gate == nil {
		return n.MLP.Params
	}
	return append(n.allParams(), float32(n.Gate.Threshold))
}

// allParams returns the digit network's parameters followed by the gate's, as the file stores them.
func (n *Network) allParams() []float32 {
	if n.GateMLP == nil {
		return n.MLP.Params
	}
	return slices.Concat(n.MLP.Params, n.GateMLP.Params)
}
