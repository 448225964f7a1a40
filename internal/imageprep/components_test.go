package imageprep

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// floodComponents is the plain definition keepComponents implements: label 8-connected ink pixels one by one with a
// stack; measure each component's box, pixels and pixels near the box's edges pixel by pixel, to find the rules
// (lines and outlines, see findRules); drop the rules when a component of weight remains besides them, and then the
// components lighter than minComponent of the heaviest remaining; box the rest.
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
	n := len(mass)
	bx0, by0, bx1, by1 := make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	pixels, edge := make([]int, n), make([]int, n)
	for id := range n {
		bx0[id], by0[id] = w, h
	}
	for i, id := range labels {
		x, y := i%w, i/w
		bx0[id], by0[id], bx1[id], by1[id] = min(bx0[id], x), min(by0[id], y), max(bx1[id], x+1), max(by1[id], y+1)
		pixels[id]++
	}
	for i, id := range labels {
		x, y := i%w, i/w
		t := max(1, min(bx1[id]-bx0[id], by1[id]-by0[id])/10)
		if y < by0[id]+t || y >= by1[id]-t || x < bx0[id]+t || x >= bx1[id]-t {
			edge[id]++
		}
	}
	rule, line := make([]bool, n), make([]bool, n)
	rest := 0.0
	for id := 1; id < n; id++ {
		bw, bh := bx1[id]-bx0[id], by1[id]-by0[id]
		box := 2*bw >= w && 2*bh >= h && 10*edge[id] >= 9*pixels[id]
		line[id] = !box && (2*bw >= w && bw >= 10*bh || 2*bh >= h && bh >= 10*bw)
		rule[id] = box || line[id]
		if !rule[id] {
			rest = max(rest, mass[id])
		}
	}
	// A line is a rule only when it is a quarter longer than the rest of the ink (not rules, not specks) is wide
	// or tall.
	ex0, ey0, ex1, ey1 := w, h, 0, 0
	for id := 1; id < n; id++ {
		if !rule[id] && mass[id] >= minComponent*rest {
			ex0, ey0, ex1, ey1 = min(ex0, bx0[id]), min(ey0, by0[id]), max(ex1, bx1[id]), max(ey1, by1[id])
		}
	}
	for id := 1; id < n; id++ {
		bw, bh := bx1[id]-bx0[id], by1[id]-by0[id]
		if line[id] && !(bw >= 10*bh && 4*bw >= 5*max(ex1-ex0, 0) || bh >= 10*bw && 4*bh >= 5*max(ey1-ey0, 0)) {
			rule[id] = false
			rest = max(rest, mass[id])
		}
	}
	rules := slices.Contains(rule, true)
	ref := heaviest
	if rules && rest >= minDigitShare*heaviest {
		ref = rest
	} else {
		clear(rule)
	}
	x0, y0, x1, y1 = w, h, 0, 0
	for i, id := range labels {
		if id == 0 {
			continue
		}
		if rule[id] || mass[id] < minComponent*ref {
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

// TestRulesGoDigitsStay draws digit-like shapes with and without the rules of a form or a scan around them: the
// rules must go and the shapes stay, and a shape alone must stay whatever it looks like.
func TestRulesGoDigitsStay(t *testing.T) {
	const w, h = 100, 100
	type box [4]int
	ring := func(ink []float32, cx, cy, rx, ry, thick float64) box { // an ellipse outline, like a 0
		for y := range h {
			for x := range w {
				dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				if d := dx*dx + dy*dy; d <= 1 && d >= (1-thick)*(1-thick) {
					ink[y*w+x] = 1
				}
			}
		}
		return box{int(math.Ceil(cx - rx)), int(math.Ceil(cy - ry)), int(math.Floor(cx+rx)) + 1, int(math.Floor(cy+ry)) + 1}
	}
	rect := func(ink []float32, x0, y0, x1, y1 int) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				ink[y*w+x] = 1
			}
		}
	}
	frame := func(ink []float32, x0, y0, x1, y1, t int) {
		rect(ink, x0, y0, x1, y0+t)
		rect(ink, x0, y1-t, x1, y1)
		rect(ink, x0, y0, x0+t, y1)
		rect(ink, x1-t, y0, x1, y1)
	}
	for _, c := range []struct {
		name string
		draw func([]float32) box // draws and returns the box the digit alone occupies
	}{
		{"a 0 alone filling the image", func(ink []float32) box { return ring(ink, 50, 50, 49.5, 49.5, 0.2) }},
		{"a 0 inside a frame at the edge", func(ink []float32) box { frame(ink, 0, 0, w, h, 1); return ring(ink, 50, 50, 25, 35, 0.25) }},
		{"a 0 inside a form's box", func(ink []float32) box { frame(ink, 10, 10, 90, 90, 3); return ring(ink, 50, 50, 20, 30, 0.25) }},
		{"a 1 alone, a thin stroke the height of the image", func(ink []float32) box { rect(ink, 48, 0, 52, 100); return box{48, 0, 52, 100} }},
		{"a 1 above a ruled line", func(ink []float32) box {
			rect(ink, 0, 90, 100, 92)
			rect(ink, 45, 20, 52, 80)
			return box{45, 20, 52, 80}
		}},
		{"a 1 beside a margin line", func(ink []float32) box {
			rect(ink, 10, 0, 12, 100)
			rect(ink, 45, 20, 52, 80)
			return box{45, 20, 52, 80}
		}},
		{"a bar alone (a 7's stroke? a minus?)", func(ink []float32) box { rect(ink, 0, 50, 100, 53); return box{0, 50, 100, 53} }},
		{"a 1 beside a stray dot", func(ink []float32) box {
			rect(ink, 48, 0, 51, 100)
			rect(ink, 80, 40, 84, 44)
			return box{48, 0, 84, 100}
		}},
		{"a 5 whose top bar is drawn apart, in a tight crop", func(ink []float32) box {
			rect(ink, 0, 0, 100, 4)          // the bar
			rect(ink, 0, 10, 6, 50)          // the stem
			ring(ink, 50, 72, 49.5, 27, 0.2) // the belly, roughly
			return box{0, 0, 100, 100}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ink := make([]float32, w*h)
			want := c.draw(ink)
			var p Preparer
			x0, y0, x1, y1, ok := p.keepComponents(slices.Clone(ink), w, h)
			if got := (box{x0, y0, x1, y1}); !ok || got != want {
				t.Errorf("kept %v (%v); want the digit's %v", got, ok, want)
			}
			fx0, fy0, fx1, fy1, _ := floodComponents(slices.Clone(ink), w, h)
			if (box{fx0, fy0, fx1, fy1}) != want {
				t.Errorf("the flood fill reference keeps %v; want %v", box{fx0, fy0, fx1, fy1}, want)
			}
		})
	}
}
