package train

import (
	"bytes"
	"encoding/json"
	"math"
	"math/bits"
)

// Auto is the value of BatchSize, Epochs, ValidationSplit and EarlyStoppingPatience that asks for the automatic
// choice, which Resolve makes from the number of examples. DefaultRequest has it in all four, so a request that
// leaves them out (or sends null) gets them; the JSON form of a Request leaves an unresolved field out.
const Auto = -1

// The automatic rule's constants.
const (
	// autoSteps is the number of mini-batch steps the automatic epochs aim at, whatever the set's size: a small set
	// is passed over many times, a large one (MNIST) as few as minAutoEpochs.
	autoSteps = 3000
	// minAutoEpochs and maxAutoEpochs bound the automatic epochs.
	minAutoEpochs = 10
	maxAutoEpochs = 100
	// minAutoBatch and maxAutoBatch bound the automatic batch size.
	minAutoBatch = 16
	maxAutoBatch = 64
	// minAutoValidation is the fewest examples that get a validation split; smaller sets train on everything.
	minAutoValidation = 20
)

// Resolve returns r with its Auto fields chosen for a data set of examples examples (before Limit applies); the
// other fields are left as they are. The rule, where n is the number of examples used:
//   - validation_split: enough to hold out MinValidation (50) examples, at least 0.1 and at most 0.2; 0 when n is
//     under 20.
//   - batch_size: an eighth of the training examples, rounded down to a power of two, within 16..64.
//   - epochs: enough passes for about 3000 steps, within 10..100.
//   - early_stopping_patience: a tenth of the epochs, at least 3, when the validation split holds at least
//     MinValidation examples, which can judge; otherwise 0 (off: the run trains every epoch and keeps the last
//     weights).
//
// On MNIST's 60000 examples the rule gives the fixed defaults it replaced: 0.1, 64, 10 epochs and patience 3.
func (r Request) Resolve(examples int) Request {
	n := examples
	if r.Limit > 0 {
		n = min(n, r.Limit)
	}
	n = max(n, 1)
	if r.ValidationSplit == Auto {
		r.ValidationSplit = 0
		if n >= minAutoValidation {
			r.ValidationSplit = min(max(float64(MinValidation)/float64(n), 0.1), 0.2)
		}
	}
	val := 0
	if r.ValidationSplit > 0 {
		val = int(float64(n)*r.ValidationSplit + 0.5)
	}
	trainN := max(n-val, 1)
	if r.BatchSize == Auto {
		r.BatchSize = min(max(floorPow2(trainN/8), minAutoBatch), maxAutoBatch)
	}
	if r.Epochs == Auto {
		steps := (trainN + r.BatchSize - 1) / r.BatchSize
		r.Epochs = min(max((autoSteps+steps-1)/steps, minAutoEpochs), maxAutoEpochs)
	}
	if r.EarlyStoppingPatience == Auto {
		r.EarlyStoppingPatience = 0
		if val >= MinValidation {
			r.EarlyStoppingPatience = max(3, r.Epochs/10)
		}
	}
	return r
}

// Resolved reports whether no field is Auto.
func (r Request) Resolved() bool {
	return r.BatchSize != Auto && r.Epochs != Auto && r.ValidationSplit != Auto && r.EarlyStoppingPatience != Auto
}

func floorPow2(n int) int {
	if n < 1 {
		return 0
	}
	return 1 << (bits.Len(uint(n)) - 1)
}

// UnmarshalJSON reads r from JSON onto its current values, as encoding/json does, refusing unknown fields, except
// that BatchSize, Epochs, ValidationSplit and EarlyStoppingPatience become Auto when absent or null: that is how
// MarshalJSON writes them, so a queued job read back from its file is still automatic.
func (r *Request) UnmarshalJSON(data []byte) error {
	type plain Request
	w := struct {
		*plain
		BatchSize             *int     `json:"batch_size"`
		Epochs                *int     `json:"epochs"`
		ValidationSplit       *float64 `json:"validation_split"`
		EarlyStoppingPatience *int     `json:"early_stopping_patience"`
	}{plain: (*plain)(r)}
	// A decoder's DisallowUnknownFields does not reach a type's own UnmarshalJSON, so it is set again here: a
	// request with a misspelt field is refused rather than trained with the default.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	// The marker is not a value a client sends: it leaves the field out.
	for _, f := range []struct {
		name string
		auto bool
	}{
		{"batch_size", w.BatchSize != nil && *w.BatchSize == Auto},
		{"epochs", w.Epochs != nil && *w.Epochs == Auto},
		{"validation_split", w.ValidationSplit != nil && *w.ValidationSplit == Auto},
		{"early_stopping_patience", w.EarlyStoppingPatience != nil && *w.EarlyStoppingPatience == Auto},
	} {
		if f.auto {
			return invalid("%s -1: leave the field out for the automatic choice", f.name)
		}
	}
	r.BatchSize, r.Epochs = orAuto(w.BatchSize), orAuto(w.Epochs)
	r.EarlyStoppingPatience = orAuto(w.EarlyStoppingPatience)
	r.ValidationSplit = Auto
	if w.ValidationSplit != nil {
		r.ValidationSplit = *w.ValidationSplit
	}
	return nil
}

func orAuto(v *int) int {
	if v == nil {
		return Auto
	}
	return *v
}

// MarshalJSON writes r as JSON, leaving out the fields still Auto, so a queued job's record shows what was asked
// rather than the marker.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	w := struct {
		plain
		BatchSize             *int     `json:"batch_size,omitempty"`
		Epochs                *int     `json:"epochs,omitempty"`
		ValidationSplit       *float64 `json:"validation_split,omitempty"`
		EarlyStoppingPatience *int     `json:"early_stopping_patience,omitempty"`
	}{plain: plain(r)}
	if r.BatchSize != Auto {
		w.BatchSize = &r.BatchSize
	}
	if r.Epochs != Auto {
		w.Epochs = &r.Epochs
	}
	if r.ValidationSplit != Auto && !math.IsNaN(r.ValidationSplit) {
		w.ValidationSplit = &r.ValidationSplit
	}
	if r.EarlyStoppingPatience != Auto {
		w.EarlyStoppingPatience = &r.EarlyStoppingPatience
	}
	return json.Marshal(w)
}
