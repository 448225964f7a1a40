package api

import (
	"fmt"
	"strconv"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
)

// Outcomes of one answer, the values of a prediction's "reason" and of the outcome label of
// perceptron_predictions_total: a fixed set, so the label stays bounded.
const (
	OutcomeAccepted      = "accepted"
	OutcomeLowConfidence = "low_confidence"
	OutcomeNoDigit       = "no_digit_found"
	OutcomeNotDigit      = "not_a_digit"
)

// outcome decides one answer: no digit when preprocessing found none, else not a digit when the model's gate takes
// the input for something else (model.Gate) or the network's hidden activations are far from every class of its
// training data (model.FeatureDistance), else low confidence when the calibrated confidence is below the threshold,
// else accepted. Neither gate nor distance depends on min_confidence: a confident answer about a letter is still
// not about a digit.
func outcome(noDigit, unlike bool, confidence float32, minConfidence float64) string {
	switch {
	case noDigit:
		return OutcomeNoDigit
	case unlike:
		return OutcomeNotDigit
	case float64(confidence) < minConfidence:
		return OutcomeLowConfidence
	}
	return OutcomeAccepted
}

// parseMinConfidence reads the min_confidence of a request: a number in 0..1, or ok false when it is absent (then
// the answering model's own threshold applies).
func parseMinConfidence(s string) (v float64, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0 && v <= 1) {
		return 0, false, errorf(KindInvalid, fmt.Sprintf("min_confidence must be a number from 0 to 1, got %q", truncate(s, 32)))
	}
	return v, true, nil
}

// threshold returns the min_confidence that applies to an answer of net: the request's when it gave one, else the
// model's default.
func threshold(net *model.Network, requested float64, given bool) float64 {
	if given {
		return requested
	}
	return net.MinConfidence()
}

// markNoDigit records that row i of b has no digit. The flags are allocated only when a row needs one, so the
// common request (every image a digit) costs nothing.
func (b *batchInput) markNoDigit(i int) {
	if len(b.noDigit) <= i {
		b.noDigit = append(b.noDigit, make([]bool, i+1-len(b.noDigit))...)
	}
	b.noDigit[i] = true
}

// markBlankRows marks the ready-made input rows from first on that are all zeros: for a model with the mnist
// preprocessing that is the vector of an image without a digit, whichever way it arrived.
func (b *batchInput) markBlankRows(first int) {
	for i := first; i < b.n; i++ {
		blank := true
		for _, v := range b.x[i*b.size : (i+1)*b.size] {
			if v != 0 {
				blank = false
				break
			}
		}
		if blank {
			b.markNoDigit(i)
		}
	}
}

// unlikeDigits reports whether row i of res is not taken for a digit: beyond its model's feature distance threshold,
// or beyond its gate's (model.Gate).
func unlikeDigits(res inference.Result, i int) bool {
	if g := res.Model.Gate; g != nil && i < len(res.NotDigit) && g.NotADigit(res.NotDigit[i]) {
		return true
	}
	f := res.Model.FeatureDistance
	return f != nil && i < len(res.Distances) && float64(res.Distances[i]) > f.Threshold
}

// hasNoDigit reports whether row i was marked.
func hasNoDigit(flags []bool, i int) bool { return i < len(flags) && flags[i] }

// v2OutputNames are the outputs of /v2 inference. probabilities is the only one answered when a request names none,
// as before the others existed; accepted and reason carry the honest answer of /predict.
var v2OutputNames = map[string]bool{"probabilities": true, "accepted": true, "reason": true}

// honestOutputsMeta describes the outputs of /v2 inference beside probabilities, for the model metadata.
var honestOutputsMeta = []oip.TensorMeta{
	{Name: "accepted", Datatype: "BOOL", Shape: []int64{-1}},
	{Name: "reason", Datatype: "BYTES", Shape: []int64{-1}},
}

// v2MinConfidence reads the request parameter min_confidence, a number in 0..1; ok is false when it is absent.
func v2MinConfidence(params map[string]any) (v float64, ok bool, err error) {
	raw, given := params["min_confidence"]
	if !given {
		return 0, false, nil
	}
	v, isNum := raw.(float64)
	if !isNum || !(v >= 0 && v <= 1) {
		return 0, false, errorf(KindInvalid, "parameter min_confidence must be a number from 0 to 1")
	}
	return v, true, nil
}

// v2Outputs builds the named outputs (probabilities alone when none is named), in the order named: probabilities
// [n, classes]; accepted [n], false for an image without a digit or below the threshold; reason [n], "" for an
// accepted answer, else low_confidence, not_a_digit or no_digit_found.
func v2Outputs(names []string, res inference.Result, n int, noDigit []bool, minConfidence float64) []v2OutputTensor {
	if len(names) == 0 {
		names = []string{"probabilities"}
	}
	classes := res.Model.MLP.Classes()
	var accepted []bool
	var reasons []string
	for _, name := range names {
		if name != "probabilities" && accepted == nil {
			accepted, reasons = make([]bool, n), make([]string, n)
			for i := range n {
				probs := res.Probs[i*classes : (i+1)*classes]
				o := outcome(hasNoDigit(noDigit, i), unlikeDigits(res, i), probs[model.Argmax(probs)], minConfidence)
				accepted[i] = o == OutcomeAccepted
				if !accepted[i] {
					reasons[i] = o
				}
			}
		}
	}
	out := make([]v2OutputTensor, 0, len(names))
	for _, name := range names {
		switch name {
		case "probabilities":
			out = append(out, v2OutputTensor{Name: name, Shape: []int{n, classes}, Datatype: "FP32", Data: res.Probs})
		case "accepted":
			out = append(out, v2OutputTensor{Name: name, Shape: []int{n}, Datatype: "BOOL", Data: accepted})
		case "reason":
			out = append(out, v2OutputTensor{Name: name, Shape: []int{n}, Datatype: "BYTES", Data: reasons})
		}
	}
	return out
}
