package train

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestResolveAdaptsTheDefaultsToTheDataSet(t *testing.T) {
	type got struct {
		batch, epochs, patience int
		split                   float64
	}
	for _, tc := range []struct {
		name     string
		examples int
		limit    int
		want     got
	}{
		{"MNIST gets the fixed defaults the rule replaced", 60000, 0, got{64, 10, 3, 0.1}},
		{"120 pictures hold out 24, too few to stop early by, and take 100 small epochs", 120, 0, got{16, 100, 0, 0.2}},
		{"500 examples hold out 50, enough to stop early", 500, 0, got{32, 100, 10, 0.1}},
		{"2000 examples", 2000, 0, got{64, 100, 10, 0.1}},
		{"a tiny set trains on everything", 12, 0, got{16, 100, 0, 0}},
		{"the limit counts, not the set", 60000, 120, got{16, 100, 0, 0.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := DefaultRequest()
			req.Limit = tc.limit
			r := req.Resolve(tc.examples)
			if g := (got{r.BatchSize, r.Epochs, r.EarlyStoppingPatience, r.ValidationSplit}); g != tc.want {
				t.Errorf("got batch %d, epochs %d, patience %d, split %v; want %+v", g.batch, g.epochs, g.patience, g.split, tc.want)
			}
			if !r.Resolved() || r.Validate() != nil {
				t.Errorf("resolved request %+v: resolved %v, %v", r, r.Resolved(), r.Validate())
			}
		})
	}
	t.Run("explicit values are kept, zeros included", func(t *testing.T) {
		req := DefaultRequest()
		req.BatchSize, req.Epochs, req.ValidationSplit, req.EarlyStoppingPatience = 16, 7, 0, 0
		if r := req.Resolve(120); r.BatchSize != 16 || r.Epochs != 7 || r.ValidationSplit != 0 || r.EarlyStoppingPatience != 0 {
			t.Errorf("got %+v; want the explicit values", r)
		}
	})
}

func TestRequestJSONLeavesOutWhatIsStillAutomatic(t *testing.T) {
	req := DefaultRequest()
	req.Dataset = "ds-0123456789abcdef"
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"batch_size", "epochs", "validation_split", "early_stopping_patience"} {
		if strings.Contains(string(data), `"`+f+`"`) {
			t.Errorf("%s has %s; want it left out while automatic", data, f)
		}
	}
	// Decoding onto the defaults, as POST /train does, gives the automatic request back; resolved, every field is
	// written.
	back := DefaultRequest()
	if err := json.Unmarshal(data, &back); err != nil || back.Resolved() {
		t.Fatalf("decoded %+v, %v; want the fields automatic", back, err)
	}
	data, _ = json.Marshal(back.Resolve(120))
	for _, f := range []string{`"batch_size":16`, `"epochs":100`, `"validation_split":0.2`, `"early_stopping_patience":0`} {
		if !strings.Contains(string(data), f) {
			t.Errorf("%s lacks %s", data, f)
		}
	}
}

func TestRequestJSONRefusesUnknownFieldsAndTheMarker(t *testing.T) {
	for _, body := range []string{`{"epoch": 3}`, `{"batch_size": -1}`, `{"validation_split": -1}`} {
		r := DefaultRequest()
		if err := json.Unmarshal([]byte(body), &r); err == nil {
			t.Errorf("%s decoded to %+v; want an error", body, r)
		}
	}
}
