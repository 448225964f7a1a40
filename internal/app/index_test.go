package app

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// indexEntry is one model of POST /v2/repository/index as a client reads it.
type indexEntry struct {
	Name, Version, State, Reason string
	Default                      bool
	Labels                       []string
	Input                        *model.Input
}

func repositoryIndex(t *testing.T, h http.Handler, body string) []indexEntry {
	t.Helper()
	code, out := send(t, h, "POST", "/v2/repository/index", "application/json", []byte(body))
	if code != http.StatusOK {
		t.Fatalf("POST /v2/repository/index %s: %d %s", body, code, out)
	}
	var index []indexEntry
	if err := json.Unmarshal([]byte(out), &index); err != nil {
		t.Fatalf("the index %s: %v", out, err)
	}
	return index
}

// TestRepositoryIndexListsEveryModelWithItsLabelsAndInput stores a two-class photo model "pets" beside the embedded
// digit model: before it is activated the index says it is not served, after, it lists it ready with its own labels
// and input, the digit model staying first and default; {"ready": true} leaves out what is not served.
func TestRepositoryIndexListsEveryModelWithItsLabelsAndInput(t *testing.T) {
	s := newTestService(t, t.TempDir(), Config{})
	digits := s.Engine.Model()
	photo := model.Input{Width: 8, Height: 6, Preprocess: model.PreprocessResize}
	pets, err := model.New(model.Info{Name: "pets", Version: "pets-1", Created: time.Now().UTC(), Layers: []int{48, 4, 2},
		Activation: model.ReLU, Labels: []string{"cat", "dog"}, Input: photo}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Registry.Put(pets); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	in := digits.Input
	wantDigits := indexEntry{Name: digits.Name, Version: digits.Version, State: "READY", Default: true, Labels: digits.Labels, Input: &in}

	got := repositoryIndex(t, h, "")
	want := []indexEntry{wantDigits, {Name: "pets", State: "UNAVAILABLE", Reason: "no version of this model is active"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("index before activating pets:\n got %+v\nwant %+v", got, want)
	}
	if got := repositoryIndex(t, h, `{"ready": true}`); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("ready models before activating pets: %+v; want the digit model alone", got)
	}

	if code, body := do(t, h, "POST", "/models/pets/versions/pets-1/activate"); code != http.StatusOK {
		t.Fatalf("activating pets-1: %d %s", code, body)
	}
	want = []indexEntry{wantDigits, {Name: "pets", Version: "pets-1", State: "READY", Labels: []string{"cat", "dog"}, Input: &photo}}
	for _, body := range []string{"", "{}", `{"ready": true}`, " \n"} {
		if got := repositoryIndex(t, h, body); !reflect.DeepEqual(got, want) {
			t.Errorf("index %q after activating pets:\n got %+v\nwant %+v", body, got, want)
		}
	}

	// A damaged active version is not served, and the index says why.
	pets2 := pets.Clone()
	pets2.Version, pets2.Created = "pets-2", pets.Created.Add(time.Second)
	if err := s.Registry.Put(pets2); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, h, "POST", "/models/pets/versions/pets-2/activate"); code != http.StatusOK {
		t.Fatalf("activating pets-2: %d %s", code, body)
	}
	if err := os.Truncate(filepath.Join(s.Registry.Dir(), "versions", "pets-2.pcpt"), 100); err != nil {
		t.Fatal(err)
	}
	want = []indexEntry{wantDigits, {Name: "pets", State: "UNAVAILABLE", Reason: "its active version pets-2 does not load"}}
	if got := repositoryIndex(t, h, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("index with pets-1 damaged:\n got %+v\nwant %+v", got, want)
	}
}

// TestRepositoryIndexRefusesAMalformedRequest answers a 400 in the protocol's {"error"} for a body that is not the
// optional object, and never lists models for one.
func TestRepositoryIndexRefusesAMalformedRequest(t *testing.T) {
	h := newTestService(t, t.TempDir(), Config{}).Handler()
	for _, body := range []string{`[]`, `{"ready": "yes"}`, `{"ready": true`, `{"readyy": true}`, `{} {}`, `null`, `"x"`} {
		code, out := send(t, h, "POST", "/v2/repository/index", "application/json", []byte(body))
		var e struct{ Error string }
		if code != http.StatusBadRequest || json.Unmarshal([]byte(out), &e) != nil || e.Error == "" {
			t.Errorf("index with body %s: %d %s; want 400 with {\"error\"}", body, code, out)
		}
	}
}
