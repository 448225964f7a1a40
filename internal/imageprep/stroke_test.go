package imageprep

import (
	"math"
	"slices"
	"testing"
)

// ringInk draws an ellipse outline of the given stroke width, centred in a w x h image, as ink 1 on 0.
func ringInk(w, h int, rx, ry, width float64) []float32 {
	ink := make([]float32, w*h)
	cx, cy := float64(w)/2, float64(h)/2
	for y := range h {
		for x := range w {
			dx, dy := (float64(x)+0.5-cx)/rx, (float64(y)+0.5-cy)/ry
			// Distance from the ellipse, roughly, in pixels.
			d := math.Abs(math.Sqrt(dx*dx+dy*dy)-1) * min(rx, ry)
			if d <= width/2 {
				ink[y*w+x] = 1
			}
		}
	}
	return ink
}

// TestStrokeWidthComesIntoMNISTsRange draws rings of many stroke widths and checks that normalizeStroke leaves
// MNIST-like widths exactly as they are and brings the others into the range, as strokeWidth measures it.
func TestStrokeWidthComesIntoMNISTsRange(t *testing.T) {
	const w, h = 160, 160
	for _, c := range []struct {
		name    string
		width   float64 // stroke width in pixels, on a ring 120 pixels tall
		changed bool
	}{
		{"hairline, 1 pixel", 1, true},
		{"fine pen, 3 pixels", 3, true},
		{"MNIST-like, 12 pixels", 12, false},
		{"MNIST's boldest, 22 pixels", 22, false},
		{"marker, 36 pixels", 36, true},
		{"very bold, 50 pixels", 50, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ink := ringInk(w, h, 40, 60-c.width/2, c.width)
			var p Preparer
			x0, y0, x1, y1 := p.inkBox(ink, w, 0, 0, w, h)
			before, _ := p.strokeWidth(ink, w, x0, y0, x1, y1)
			orig := slices.Clone(ink)
			nx0, ny0, nx1, ny1 := p.normalizeStroke(ink, w, h, x0, y0, x1, y1)
			after, _ := p.strokeWidth(ink, w, nx0, ny0, nx1, ny1)
			t.Logf("width %.3f -> %.3f of the digit's height", before, after)
			if !c.changed {
				if !slices.Equal(ink, orig) {
					t.Errorf("a width of %.3f, in MNIST's range, was changed", before)
				}
				return
			}
			if after < minStroke-0.01 || after > maxStroke+0.01 {
				t.Errorf("width %.3f -> %.3f; want it within %.3f..%.3f", before, after, minStroke, maxStroke)
			}
			if bx0, by0, bx1, by1 := p.inkBox(ink, w, 0, 0, w, h); [4]int{bx0, by0, bx1, by1} != [4]int{nx0, ny0, nx1, ny1} {
				t.Errorf("returned box %v; the ink's is %v", [4]int{nx0, ny0, nx1, ny1}, [4]int{bx0, by0, bx1, by1})
			}
		})
	}
}

// TestStrokeWidthLeavesSmallAndFramedInkAlone: a digit at MNIST's own size is too coarse to measure, and thin ink
// from edge to edge is a frame, not a pen.
func TestStrokeWidthLeavesSmallAndFramedInkAlone(t *testing.T) {
	var p Preparer
	small := ringInk(28, 28, 7, 10, 1)
	orig := slices.Clone(small)
	p.normalizeStroke(small, 28, 28, 0, 0, 28, 28)
	if !slices.Equal(small, orig) {
		t.Error("a 28x28 digit was changed")
	}
	const w, h = 100, 100
	framed := ringInk(w, h, 20, 30, 2)
	for i := range w {
		framed[i], framed[(h-1)*w+i], framed[i*w], framed[i*w+w-1] = 1, 1, 1, 1
	}
	orig = slices.Clone(framed)
	p.normalizeStroke(framed, w, h, 0, 0, w, h)
	if !slices.Equal(framed, orig) {
		t.Error("thin ink from edge to edge was thickened")
	}
}

// TestThinningKeepsThinStrokes: a bold 0 whose top and bottom bars are much thinner than its sides must keep its
// bars when its strokes are thinned, not turn into two 1s.
func TestThinningKeepsThinStrokes(t *testing.T) {
	const w, h = 120, 160
	ink := make([]float32, w*h)
	fill := func(x0, y0, x1, y1 int) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				ink[y*w+x] = 1
			}
		}
	}
	fill(10, 10, 50, 150)  // left side, 40 wide
	fill(70, 10, 110, 150) // right side
	fill(10, 10, 110, 17)  // top bar, 7 tall
	fill(10, 143, 110, 150)
	var p Preparer
	x0, y0, x1, y1 := p.normalizeStroke(ink, w, h, 10, 10, 110, 150)
	if rel, _ := p.strokeWidth(ink, w, x0, y0, x1, y1); rel > maxStroke+0.01 {
		t.Errorf("width %.3f after thinning; want at most %.3f", rel, maxStroke)
	}
	// Some ink remains on the bars, in the middle, between the sides.
	for _, y := range []int{13, 146} {
		inked := false
		for y2 := y - 3; y2 <= y+3; y2++ {
			for _, v := range ink[y2*w+52 : y2*w+68] {
				inked = inked || v != 0
			}
		}
		if !inked {
			t.Errorf("the bar around row %d vanished", y)
		}
	}
}
