package train

import (
	"fmt"
	"math"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Evaluation is a network's performance on a labelled set.
type Evaluation struct {
	Accuracy float64
	Loss     float64 // mean cross-entropy
	// Confusion[i][j] counts examples of class i predicted as class j.
	Confusion [][]int
}

// evalChunk is how many examples one forward pass of Evaluate takes.
const evalChunk = 1024

// Evaluate runs the whole set through the network in large batches. The set must have the network's input size
// and no more classes than it has outputs.
func Evaluate(n *model.Network, s *dataset.Set) (Evaluation, error) { return evaluate(n, s, false) }

// evaluate is Evaluate, on the calling goroutine only when serial is set.
func evaluate(n *model.Network, s *dataset.Set, serial bool) (Evaluation, error) {
	classes, f := n.MLP.Classes(), s.Features()
	if f != n.MLP.Inputs() || len(s.Classes) > classes {
		return Evaluation{}, fmt.Errorf("data set of %d classes of %d inputs does not fit a network of %d classes of %d inputs",
			len(s.Classes), f, classes, n.MLP.Inputs())
	}
	ev := Evaluation{Confusion: make([][]int, classes)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, classes)
	}
	ws := model.Workspace[float32]{Serial: serial}
	x := make([]float32, min(evalChunk, s.Len())*f)
	correct := 0
	for lo := 0; lo < s.Len(); lo += evalChunk {
		hi := min(lo+evalChunk, s.Len())
		for i := lo; i < hi; i++ {
			s.Inputs(x[(i-lo)*f:(i-lo+1)*f], i)
		}
		probs := n.Forward(x, hi-lo, &ws)
		for i := lo; i < hi; i++ {
			row := probs[(i-lo)*classes : (i-lo+1)*classes]
			pred, y := model.Argmax(row), int(s.Y[i])
			ev.Confusion[y][pred]++
			if pred == y {
				correct++
			}
			ev.Loss -= math.Log(max(float64(row[y]), 1e-30))
		}
	}
	if s.Len() > 0 {
		ev.Accuracy = float64(correct) / float64(s.Len())
		ev.Loss /= float64(s.Len())
	}
	return ev, nil
}
