package inference

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// fakeSource serves networks from a map and counts loads.
type fakeSource struct {
	nets   map[string]*model.Network // by version
	active map[string]string         // by name
	loads  int
}

func (f *fakeSource) ActiveOf(name string) (string, error) { return f.active[name], nil }
func (f *fakeSource) Load(v string) (*model.Network, error) {
	f.loads++
	if n := f.nets[v]; n != nil {
		return n, nil
	}
	return nil, errors.New("no such version")
}
func (f *fakeSource) Names() ([]string, error) {
	var names []string
	for _, n := range f.nets {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// TestLoadedModelsAreACacheWithABudget: at most Max networks are loaded (the default one counts); making room
// evicts the least recently used one no request holds; when all are held, Acquire answers ErrBusy; the default
// model is never loaded or evicted; unknown names and versions list the names there are.
func TestLoadedModelsAreACacheWithABudget(t *testing.T) {
	def := testNet(t, 1, "d-1")
	src := &fakeSource{nets: map[string]*model.Network{}, active: map[string]string{}}
	for i, name := range []string{"a", "b", "c"} {
		n := testNet(t, uint64(10+i), name+"-1")
		n.Name = name
		src.nets[n.Version], src.active[name] = n, n.Version
	}
	e := New(Config{Workers: 1}, def)
	defer e.Close()
	m := NewModels(e, src, 3) // the default and two more

	if net, release, err := m.Acquire("", ""); err != nil || net != def {
		t.Fatalf("Acquire of the default = %v, %v; want the engine's model", net, err)
	} else {
		release()
	}
	_, relA, err := m.Acquire("a", "")
	if err != nil {
		t.Fatal(err)
	}
	_, relB, err := m.Acquire("b", "b-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Acquire("c", ""); !errors.Is(err, ErrBusy) {
		t.Errorf("Acquire(c) with a and b held: %v; want ErrBusy", err)
	}
	relA()
	relA() // a second release is harmless
	if net, relC, err := m.Acquire("c", ""); err != nil || net.Version != "c-1" {
		t.Fatalf("Acquire(c) after a was released = %v, %v; want c-1", net, err)
	} else {
		relC()
	}
	if got := m.Loaded(); !slices.Equal(got, []string{"c-1", "b-1"}) {
		t.Errorf("loaded %v; want c-1 then b-1 (a-1, the least recently used free one, evicted)", got)
	}
	relB()
	loads := src.loads
	if _, rel, err := m.Acquire("b", ""); err != nil || src.loads != loads {
		t.Errorf("Acquire(b) again: %v, %d loads; want it from the cache", err, src.loads-loads)
	} else {
		rel()
	}
	for _, c := range [][2]string{{"zebra", ""}, {"a", "b-1"}, {"a", "nope"}} {
		_, _, err := m.Acquire(c[0], c[1])
		if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "a, b, c") {
			t.Errorf("Acquire(%q, %q) = %v; want ErrUnknownModel listing a, b, c", c[0], c[1], err)
		}
	}
}
