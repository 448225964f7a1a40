package imageprep

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// distanceRef is the chamfer transform of distance written plainly, each neighbour through a bounds test: the
// optimised one must give the same bits.
func distanceRef(ink []float32, w, x0, y0, x1, y1 int, inside bool) []float32 {
	bw, bh := x1-x0, y1-y0
	d := make([]float32, bw*bh)
	const far = 1e9
	for y := range bh {
		for x, v := range ink[(y0+y)*w+x0:][:bw] {
			if (v >= 0.5) == inside {
				d[y*bw+x] = far
			}
		}
	}
	edge := float32(0)
	if !inside {
		edge = far
	}
	at := func(x, y int) float32 {
		if x < 0 || y < 0 || x >= bw || y >= bh {
			return edge
		}
		return d[y*bw+x]
	}
	const diag = 1.4142
	for y := range bh {
		for x := range bw {
			if v := d[y*bw+x]; v > 0 {
				d[y*bw+x] = min(v, at(x-1, y)+1, at(x, y-1)+1, at(x-1, y-1)+diag, at(x+1, y-1)+diag)
			}
		}
	}
	for y := bh - 1; y >= 0; y-- {
		for x := bw - 1; x >= 0; x-- {
			if v := d[y*bw+x]; v > 0 {
				d[y*bw+x] = min(v, at(x+1, y)+1, at(x, y+1)+1, at(x+1, y+1)+diag, at(x-1, y+1)+diag)
			}
		}
	}
	return d
}

func TestDistanceMatchesPlainTransform(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var p Preparer
	for trial := range 400 {
		w, h := 1+rng.IntN(60), 1+rng.IntN(60)
		ink := make([]float32, w*h)
		density := rng.Float32()
		for i := range ink {
			if rng.Float32() < density {
				ink[i] = rng.Float32()
			}
		}
		x0, y0 := rng.IntN(w), rng.IntN(h)
		x1, y1 := x0+1+rng.IntN(w-x0), y0+1+rng.IntN(h-y0)
		inside := trial%2 == 0
		want := distanceRef(ink, w, x0, y0, x1, y1, inside)
		got := p.distance(ink, w, x0, y0, x1, y1, inside)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (%dx%d, box %d,%d-%d,%d, inside %v): distances differ", trial, w, h, x0, y0, x1, y1, inside)
		}
	}
}
