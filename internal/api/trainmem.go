package api

import (
	"fmt"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// checkTrainMemory refuses, with 422, a training request whose memory estimate is more than the whole budget: such
// a job could never run, and accepting it with 202 would only fail it later, or kill the process.
func (s *Server) checkTrainMemory(req train.Request) error {
	mnist := uploads.MNISTInfo()
	examples, inputs, classes := mnist.Examples, mnist.Width*mnist.Height, len(mnist.Classes)
	if req.Dataset != dataset.MNISTName && s.datasets != nil {
		info, err := s.datasets.Get(req.Dataset)
		if err != nil {
			return nil // unknown sets are refused by the caller
		}
		examples, inputs, classes = info.Examples, info.Input().Size(), len(info.Classes)
	}
	req = req.Resolve(examples)
	need := req.MemoryEstimate(examples, inputs, classes)
	if err := s.memory.Fits(need); err != nil {
		return &Error{Kind: KindUnprocessable, Detail: fmt.Sprintf("this job needs about %s of memory (%s, hidden %v, batch %d), more than the budget of %s (MEMORY_LIMIT): use fewer or narrower layers, a smaller batch, or sgd or adam rather than lbfgs",
			membudget.Format(need), req.Optimizer, req.Hidden, req.BatchSize, membudget.Format(s.memory.Size())), Err: err}
	}
	return nil
}
