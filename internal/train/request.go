// Package train fits multilayer perceptrons to labelled data: backpropagation of softmax cross-entropy through every
// activation, mini-batch SGD with momentum and Adam, full-batch L-BFGS through gonum's optimize package, L2 weight
// decay, a seeded validation split and early stopping, with per-epoch reports and cancellation within one mini-batch.
// It reads data sets and produces model.Networks; storing and serving them is other packages' work.
package train

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Request is a training request, the body of POST /train and the flags of `server train`. Decode JSON onto
// DefaultRequest() so that absent fields keep their defaults and explicit zeros are honoured.
type Request struct {
	Dataset               string  `json:"dataset"`                 // data set id; "mnist" is built in
	Model                 string  `json:"model,omitempty"`         // the model name the version belongs to; empty means the data set's name followed by "-mlp"
	Hidden                []int   `json:"hidden"`                  // hidden layer widths; empty means softmax regression
	Activation            string  `json:"activation"`              // relu, sigmoid or tanh
	Optimizer             string  `json:"optimizer"`               // sgd (with momentum), adam or lbfgs
	LearningRate          float64 `json:"learning_rate"`           // step size; ignored by lbfgs
	Momentum              float64 `json:"momentum"`                // sgd momentum in [0,1)
	BatchSize             int     `json:"batch_size"`              // examples per mini-batch; ignored by lbfgs; Auto: see Resolve
	Epochs                int     `json:"epochs"`                  // passes over the data (lbfgs: major iterations); Auto: see Resolve
	L2                    float64 `json:"l2"`                      // weight decay: adds l2/2·Σw² to the loss
	Seed                  uint64  `json:"seed"`                    // initialisation, split and shuffling
	ValidationSplit       float64 `json:"validation_split"`        // fraction held out; 0 disables validation; Auto: see Resolve
	EarlyStoppingPatience int     `json:"early_stopping_patience"` // epochs without better validation accuracy; 0 = off; Auto: see Resolve
	Limit                 int     `json:"limit"`                   // use the first N training examples; 0 = all
	Augment               bool    `json:"augment"`                 // random rotation, scale, shear and shift per example
	Activate              string  `json:"activate"`                // never, if_better or always (for jobs)
}

// validModel is the shape of a model name, as the registry accepts it.
var validModel = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// DefaultRequest returns the defaults of every field; batch size, epochs, validation split and patience are Auto.
func DefaultRequest() Request {
	return Request{
		Dataset:               dataset.MNISTName,
		Hidden:                []int{256, 128},
		Activation:            "relu",
		Optimizer:             "adam",
		LearningRate:          0.001,
		Momentum:              0.9,
		BatchSize:             Auto,
		Epochs:                Auto,
		Seed:                  1,
		ValidationSplit:       Auto,
		EarlyStoppingPatience: Auto,
		Activate:              "if_better",
	}
}

// Bounds on a request, so nobody can ask for absurd memory or time.
const (
	MaxHidden    = 8
	MaxWidth     = 4096
	MaxEpochs    = 1000
	MaxBatchSize = 8192
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid training request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks every field against its bounds.
func (r *Request) Validate() error {
	if r.Dataset == "" {
		return invalid("dataset is empty")
	}
	if r.Model != "" && !validModel.MatchString(r.Model) {
		return invalid("model %q is not a model name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64", truncate(r.Model))
	}
	if len(r.Hidden) > MaxHidden {
		return invalid("%d hidden layers, at most %d", len(r.Hidden), MaxHidden)
	}
	for _, h := range r.Hidden {
		if h < 1 || h > MaxWidth {
			return invalid("hidden layer width %d outside 1..%d", h, MaxWidth)
		}
	}
	if _, err := model.ParseActivation(r.Activation); err != nil {
		return invalid("%v", err)
	}
	switch r.Optimizer {
	case "sgd", "adam", "lbfgs":
	default:
		return invalid("unknown optimizer %q (want sgd, adam or lbfgs)", r.Optimizer)
	}
	switch {
	case !(r.LearningRate > 0 && r.LearningRate <= 10):
		return invalid("learning_rate %v outside (0, 10]", r.LearningRate)
	case !(r.Momentum >= 0 && r.Momentum < 1):
		return invalid("momentum %v outside [0, 1)", r.Momentum)
	case r.BatchSize != Auto && (r.BatchSize < 1 || r.BatchSize > MaxBatchSize):
		return invalid("batch_size %d outside 1..%d", r.BatchSize, MaxBatchSize)
	case r.Epochs != Auto && (r.Epochs < 1 || r.Epochs > MaxEpochs):
		return invalid("epochs %d outside 1..%d", r.Epochs, MaxEpochs)
	case !(r.L2 >= 0 && r.L2 <= 1):
		return invalid("l2 %v outside [0, 1]", r.L2)
	case r.ValidationSplit != Auto && !(r.ValidationSplit >= 0 && r.ValidationSplit <= 0.5):
		return invalid("validation_split %v outside [0, 0.5]", r.ValidationSplit)
	case r.EarlyStoppingPatience != Auto && (r.EarlyStoppingPatience < 0 || r.EarlyStoppingPatience > MaxEpochs):
		return invalid("early_stopping_patience %d outside 0..%d", r.EarlyStoppingPatience, MaxEpochs)
	case r.Limit < 0:
		return invalid("limit %d is negative", r.Limit)
	}
	switch r.Activate {
	case "never", "if_better", "always":
	default:
		return invalid("activate %q (want never, if_better or always)", r.Activate)
	}
	return nil
}
