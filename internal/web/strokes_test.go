package web_test

import "testing"

// point is a pixel of a 28x28 digit.
type point struct{ x, y int }

// skeletonStrokes turns a digit image into pen strokes, as a person would trace it: the ink (pixels of at least
// half intensity) is thinned to a one-pixel skeleton (Zhang and Suen, 1984), and the skeleton's pixel graph is
// walked into polylines, each starting at a loose end when there is one. Drawn with a pen about two MNIST pixels
// wide, the strokes give back a digit of MNIST's own stroke width.
func skeletonStrokes(pix []byte, w, h int) [][]point {
	on := make([]bool, w*h)
	for i, p := range pix {
		on[i] = p >= 128
	}
	thin(on, w, h)

	at := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && on[y*w+x] }
	// Edges join 8-neighbours, except a diagonal whose corner is also skeleton: the path around the corner draws it.
	adj := map[point][]point{}
	for y := range h {
		for x := range w {
			if !at(x, y) {
				continue
			}
			p := point{x, y}
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if (dx == 0 && dy == 0) || !at(x+dx, y+dy) {
						continue
					}
					if dx != 0 && dy != 0 && (at(x+dx, y) || at(x, y+dy)) {
						continue
					}
					adj[p] = append(adj[p], point{x + dx, y + dy})
				}
			}
		}
	}
	type edge struct{ a, b point }
	used := map[edge]bool{}
	key := func(a, b point) edge {
		if a.y < b.y || (a.y == b.y && a.x < b.x) {
			return edge{a, b}
		}
		return edge{b, a}
	}
	free := func(p point) []point {
		var out []point
		for _, q := range adj[p] {
			if !used[key(p, q)] {
				out = append(out, q)
			}
		}
		return out
	}
	// Visit pixels top to bottom, left to right, as a hand tends to.
	var order []point
	for y := range h {
		for x := range w {
			if at(x, y) {
				order = append(order, point{x, y})
			}
		}
	}
	var strokes [][]point
	drawn := map[point]bool{}
	for {
		start, found := point{}, false
		for _, p := range order { // a loose end (odd free degree) first
			if n := len(free(p)); n > 0 && n%2 == 1 {
				start, found = p, true
				break
			}
		}
		if !found {
			for _, p := range order {
				if len(free(p)) > 0 {
					start, found = p, true
					break
				}
			}
		}
		if !found {
			break
		}
		stroke := []point{start}
		for p := start; ; {
			next := free(p)
			if len(next) == 0 {
				break
			}
			q := next[0]
			used[key(p, q)] = true
			stroke = append(stroke, q)
			p = q
		}
		for _, p := range stroke {
			drawn[p] = true
		}
		strokes = append(strokes, stroke)
	}
	for _, p := range order { // isolated pixels are dots
		if !drawn[p] {
			strokes = append(strokes, []point{p})
		}
	}
	return strokes
}

// thin applies Zhang-Suen thinning in place.
func thin(on []bool, w, h int) {
	at := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && on[y*w+x] }
	for changed := true; changed; {
		changed = false
		for step := range 2 {
			var clear []int
			for y := range h {
				for x := range w {
					if !at(x, y) {
						continue
					}
					// Neighbours P2..P9 clockwise from north.
					n := [8]bool{at(x, y-1), at(x+1, y-1), at(x+1, y), at(x+1, y+1), at(x, y+1), at(x-1, y+1), at(x-1, y), at(x-1, y-1)}
					count, transitions := 0, 0
					for i := range 8 {
						if n[i] {
							count++
						}
						if !n[i] && n[(i+1)%8] {
							transitions++
						}
					}
					if count < 2 || count > 6 || transitions != 1 {
						continue
					}
					p2, p4, p6, p8 := n[0], n[2], n[4], n[6]
					if step == 0 && (p2 && p4 && p6 || p4 && p6 && p8) {
						continue
					}
					if step == 1 && (p2 && p4 && p8 || p2 && p6 && p8) {
						continue
					}
					clear = append(clear, y*w+x)
				}
			}
			for _, i := range clear {
				on[i] = false
			}
			changed = changed || len(clear) > 0
		}
	}
}

func TestSkeletonStrokesTraceTheInk(t *testing.T) {
	digits := mnistTest(t)
	for _, label := range []int{0, 1, 7} {
		i := firstOf(t, digits, label)
		pix := digits.Image(i)
		strokes := skeletonStrokes(pix, digits.Cols, digits.Rows)
		n := 0
		for _, s := range strokes {
			for j, p := range s {
				n++
				if pix[p.y*digits.Cols+p.x] < 128 {
					t.Errorf("digit %d: stroke point %v is not ink", label, p)
				}
				if j > 0 && (abs(p.x-s[j-1].x) > 1 || abs(p.y-s[j-1].y) > 1) {
					t.Errorf("digit %d: stroke jumps from %v to %v", label, s[j-1], p)
				}
			}
		}
		if n < 10 || len(strokes) > 12 {
			t.Errorf("digit %d: %d strokes over %d points; want a handful of strokes tracing the digit", label, len(strokes), n)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
