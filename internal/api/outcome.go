package api

import (
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// RowOutcome decides the answer to row i of res by the rule every transport shares (outcome): noDigit marks the
// rows in which preprocessing found no digit (nil when none), and minConfidence is the threshold that applies.
// Transports other than REST (gRPC) call it, so an answer cannot mean one thing there and another here.
func RowOutcome(res inference.Result, i int, noDigit []bool, minConfidence float64) string {
	classes := res.Model.MLP.Classes()
	probs := res.Probs[i*classes : (i+1)*classes]
	return outcome(hasNoDigit(noDigit, i), unlikeDigits(res, i), probs[model.Argmax(probs)], minConfidence)
}
