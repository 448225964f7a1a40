package api

import (
	"cmp"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestPredictResponseNumbers checks that every number of a /predict answer, the confidence, the probabilities and
// the top list, is its probability as strconv formats it ('g', 6 digits, float32), for classifiers with few classes
// (whose numbers are formatted once and copied) and with many, and for several rows.
func TestPredictResponseNumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, classes := range []int{2, 10, 16, 17, 40} {
		net := &model.Network{}
		net.Name, net.Version = "m", "1"
		for j := range classes {
			net.Labels = append(net.Labels, "c"+strconv.Itoa(j))
		}
		const rows = 3
		probs := make([]float32, rows*classes)
		for i := range probs {
			probs[i] = rng.Float32() * float32([]float64{1, 1e-3, 1e-7}[rng.IntN(3)])
		}
		var c labelCache
		body := appendPredictResponse(nil, c.quoted(net), inference.Result{Probs: probs, Model: net}, nil, 0, classes, nil, 0)
		var got struct {
			Predictions []struct {
				Index         int
				Confidence    json.Number
				Probabilities map[string]json.Number
				Top           []struct {
					Label       string
					Probability json.Number
				}
			}
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("classes=%d: %v: %s", classes, err, body)
		}
		if len(got.Predictions) != rows {
			t.Fatalf("classes=%d: %d predictions", classes, len(got.Predictions))
		}
		f := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', 6, 32) }
		for i, p := range got.Predictions {
			row := probs[i*classes : (i+1)*classes]
			if string(p.Confidence) != f(row[p.Index]) {
				t.Errorf("classes=%d row %d: confidence %s, want %s", classes, i, p.Confidence, f(row[p.Index]))
			}
			for j, v := range row {
				if s := string(p.Probabilities["c"+strconv.Itoa(j)]); s != f(v) {
					t.Errorf("classes=%d row %d: probability %d is %s, want %s", classes, i, j, s, f(v))
				}
			}
			if len(p.Top) != classes {
				t.Fatalf("classes=%d row %d: %d in top", classes, i, len(p.Top))
			}
			for _, e := range p.Top {
				j, _ := strconv.Atoi(e.Label[1:])
				if string(e.Probability) != f(row[j]) {
					t.Errorf("classes=%d row %d: top %s is %s, want %s", classes, i, e.Label, e.Probability, f(row[j]))
				}
			}
		}
	}
}

// TestSortByProbability checks that sortByProbability orders classes as a stable sort by cmp.Compare does, for few
// classes (sorted by insertion) and many, with ties, both zeros and NaN among the probabilities.
func TestSortByProbability(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	pool := []float32{0, float32(math.Copysign(0, -1)), 1, 0.5, 1e-7, float32(math.NaN()), float32(math.Inf(1))}
	for n := range 41 {
		for range 200 {
			probs := make([]float32, n)
			for i := range probs {
				if rng.IntN(2) == 0 {
					probs[i] = pool[rng.IntN(len(pool))]
				} else {
					probs[i] = rng.Float32()
				}
			}
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			slices.SortStableFunc(want, func(a, c int) int { return cmp.Compare(probs[c], probs[a]) })
			got := make([]int, n)
			sortByProbability(got, probs)
			if !slices.Equal(got, want) {
				t.Fatalf("sortByProbability(%v) = %v; want %v", probs, got, want)
			}
		}
	}
}

// TestSetJSONLength checks that setJSONLength sets the headers Header.Set sets, and that adding to one of them
// leaves the other as it was, with the values in a fresh array or in one it is given.
func TestSetJSONLength(t *testing.T) {
	for i, n := range []int{0, 7, 4096, 0, 7, 4096, 100, 999, 1000, 9999, 10000, 123456} {
		var v *[2]string
		if i%2 == 1 {
			v = new([2]string)
		}
		got, want := http.Header{}, http.Header{}
		setJSONLength(got, n, v)
		want.Set("Content-Type", "application/json")
		want.Set("Content-Length", strconv.Itoa(n))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("setJSONLength(%d) = %v; want %v", n, got, want)
		}
		got.Add("Content-Type", "x")
		if v := got.Values("Content-Length"); len(v) != 1 || v[0] != strconv.Itoa(n) {
			t.Errorf("after an Add to Content-Type, Content-Length is %q; want [%d]", v, n)
		}
	}
}

// TestLengthString checks lengthString against strconv.Itoa on every number up to 20000 and a few larger ones, and
// that below 10000 it allocates nothing.
func TestLengthString(t *testing.T) {
	for n := range 20000 {
		if got, want := lengthString(n), strconv.Itoa(n); got != want {
			t.Fatalf("lengthString(%d) = %q; want %q", n, got, want)
		}
	}
	for _, n := range []int{1 << 20, math.MaxInt} {
		if got, want := lengthString(n), strconv.Itoa(n); got != want {
			t.Fatalf("lengthString(%d) = %q; want %q", n, got, want)
		}
	}
	if raceEnabled {
		return // the race detector allocates
	}
	var sink [2]string
	if a := testing.AllocsPerRun(100, func() { sink = [2]string{lengthString(4321), lengthString(321)} }); a != 0 {
		t.Errorf("%v allocations; want 0", a)
	}
	_ = sink
}
