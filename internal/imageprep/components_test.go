package imageprep

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// floodComponents is the plain definition keepComponents implements: label 8-connected ink pixels one by one with a
// stack, drop components lighter than minComponent of the heaviest, and box the rest.
func floodComponents(ink []float32, w, h int) (x0, y0, x1, y1 int, ok bool) {
	labels := make([]int, w*h)
	mass := []float64{0}
	for start := range ink {
		if ink[start] == 0 || labels[start] != 0 {
			continue
		}
		id := len(mass)
		var m float64
		labels[start] = id
		for stack := []int{start}; len(stack) > 0; {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			m += float64(ink[i])
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					x, y := i%w+dx, i/w+dy
					if j := y*w + x; x >= 0 && x < w && y >= 0 && y < h && ink[j] != 0 && labels[j] == 0 {
						labels[j] = id
						stack = append(stack, j)
					}
				}
			}
		}
		mass = append(mass, m)
	}
	heaviest := slices.Max(mass)
	if heaviest == 0 {
		return 0, 0, 0, 0, false
	}
	x0, y0, x1, y1 = w, h, 0, 0
	for i, id := range labels {
		if id == 0 {
			continue
		}
		if mass[id] < minComponent*heaviest {
			ink[i] = 0
			continue
		}
		x, y := i%w, i/w
		x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x+1), max(y1, y+1)
	}
	return x0, y0, x1, y1, true
}

// TestKeepComponentsMatchesAFloodFill compares the run-based labelling with a pixel flood fill on random ink maps of
// every density, from isolated specks to a nearly full field, including one-pixel-wide and one-pixel-tall images and
// shapes (U, spiral-like merges) where runs join late.
func TestKeepComponentsMatchesAFloodFill(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var p Preparer
	for trial := range 3000 {
		w, h := 1+rng.IntN(40), 1+rng.IntN(40)
		density := rng.Float64()
		ink := make([]float32, w*h)
		for i := range ink {
			if rng.Float64() < density {
				// Mostly light specks with a few heavy pixels, so the minComponent cut matters.
				ink[i] = float32(rng.Float64() * rng.Float64())
			}
		}
		want := slices.Clone(ink)
		got := slices.Clone(ink)
		wx0, wy0, wx1, wy1, wok := floodComponents(want, w, h)
		gx0, gy0, gx1, gy1, gok := p.keepComponents(got, w, h)
		if [5]any{gx0, gy0, gx1, gy1, gok} != [5]any{wx0, wy0, wx1, wy1, wok} {
			t.Fatalf("trial %d (%dx%d, density %.2f): box %v %v %v %v %v; want %v %v %v %v %v",
				trial, w, h, density, gx0, gy0, gx1, gy1, gok, wx0, wy0, wx1, wy1, wok)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (%dx%d, density %.2f): kept ink differs from the flood fill", trial, w, h, density)
		}
	}
}
