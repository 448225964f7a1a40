package imageprep

// MNIST's pens drew strokes about a tenth as wide as the digit is tall (the middle of MNIST's test digits prepared
// from 280-pixel copies: 0.106; 99 in 100 between 0.067 and 0.21). A network trained on them reads a marker's bold
// strokes as an 8 and a hairline pen's as noise, however well the digit is otherwise prepared, so normalizeStroke
// brings widths outside MNIST's range back into it.
const (
	// Stroke widths relative to the digit's longer side: beyond maxStroke strokes are thinned to boldTarget,
	// below minStroke thickened to thinTarget. Widths MNIST has are left alone.
	maxStroke, boldTarget = 0.22, 0.15
	minStroke, thinTarget = 0.045, 0.08
	// minStrokeSide is the least longer side, in working pixels, at which widths are measured and changed: a digit
	// at MNIST's own size has strokes of one or two pixels, too coarse to measure, and is left as it is.
	minStrokeSide = 48
	// maxInkDepth is the deepest ink, relative to the digit's longer side, that can still be strokes (see inkDepth):
	// MNIST's digits in every upload form stay under 0.25, a bold marker's under 0.35 (before thinning); a filled
	// disc or square is 0.5. Deeper ink is a shape or a blot, not a digit. (A triangle, 0.29, or a flat ellipse is
	// within a bold digit's range and is left to the model's confidence.)
	maxInkDepth = 0.4
)

// normalizeStroke measures the stroke width of the ink in the box [x0, x1) x [y0, y1) of the w x h working image
// (strokeWidth), and thins (erodes) or thickens (dilates) the strokes to bring a width outside MNIST's range into
// it. It returns the box of the ink afterwards.
func (p *Preparer) normalizeStroke(ink []float32, w, h, x0, y0, x1, y1 int) (int, int, int, int) {
	side := max(x1-x0, y1-y0)
	if side < minStrokeSide {
		return x0, y0, x1, y1
	}
	rel, dist := p.strokeWidth(ink, w, x0, y0, x1, y1)
	bw, bh := x1-x0, y1-y0
	switch {
	case rel == 0:
		return x0, y0, x1, y1
	case rel > maxStroke:
		// Erode: keep the ink deeper than r inside the strokes, and nothing of their anti-aliased edges; but keep
		// the ridge of every stroke, so a stroke thinner than the median (the thin bars of a bold 0) stays as a line
		// instead of vanishing.
		r := float32((rel - boldTarget) * float64(side) / 2)
		for y := range bh {
			row := ink[(y0+y)*w+x0:][:bw]
			for x := range row {
				if dist[y*bw+x] <= r && !ridge(dist, bw, bh, x, y) {
					row[x] = 0
				}
			}
		}
	case rel < minStroke && (x0 > 0 || y0 > 0 || x1 < w || y1 < h):
		// Dilate: every pixel within r of the strokes becomes ink, over the box grown by r. (Ink from edge to edge
		// on all four sides is left alone: it is most likely a frame that touches the digit, whose thin line sets
		// the width, and thickening it would bury the digit.)
		r := int((thinTarget-rel)*float64(side)/2 + 0.5)
		x0, y0, x1, y1 = max(x0-r, 0), max(y0-r, 0), min(x1+r, w), min(y1+r, h)
		near := p.distance(ink, w, x0, y0, x1, y1, false)
		bw = x1 - x0
		for y := range y1 - y0 {
			row := ink[(y0+y)*w+x0:][:bw]
			for x := range row {
				if near[y*bw+x] <= float32(r) {
					row[x] = 1
				}
			}
		}
	default:
		return x0, y0, x1, y1
	}
	return p.inkBox(ink, w, x0, y0, x1, y1)
}

// strokeWidth measures the width of the strokes of the ink in the box [x0, x1) x [y0, y1) of the w-wide working
// image, relative to the box's longer side: twice the median distance to the paper along the ridges of the strokes
// (the pixels no nearer the paper than their four neighbours), less the ridge pixel itself. It also returns the
// distances, for normalizeStroke to erode with; 0 means no ink.
func (p *Preparer) strokeWidth(ink []float32, w, x0, y0, x1, y1 int) (rel float64, dist []float32) {
	dist = p.distance(ink, w, x0, y0, x1, y1, true)
	bw, bh := x1-x0, y1-y0
	depths := p.scratch[:0]
	for y := range bh {
		for x := range bw {
			if ridge(dist, bw, bh, x, y) {
				depths = append(depths, dist[y*bw+x])
			}
		}
	}
	p.scratch = depths
	if len(depths) == 0 {
		return 0, dist
	}
	return float64(2*selectK(depths, len(depths)/2)-1) / float64(max(bw, bh)), dist
}

// ridge reports whether pixel (x, y) of the bw x bh distances d is on a stroke's ridge: ink, and no nearer the
// paper than its four neighbours (outside the box counts as paper).
func ridge(d []float32, bw, bh, x, y int) bool {
	v := d[y*bw+x]
	at := func(x, y int) float32 {
		if x < 0 || y < 0 || x >= bw || y >= bh {
			return 0
		}
		return d[y*bw+x]
	}
	return v > 0 && v >= at(x-1, y) && v >= at(x+1, y) && v >= at(x, y-1) && v >= at(x, y+1)
}

// distance is a two-pass chamfer distance transform over the box [x0, x1) x [y0, y1) of the w-wide image ink: with
// inside set, the distance of each pixel of ink (at least half strength) to the nearest other pixel, 0 elsewhere;
// otherwise the distance of each pixel to the nearest pixel of ink, 0 on ink. Outside the box counts as paper for
// inside, and as far from ink otherwise. Steps cost 1 straight and 1.4142 diagonally.
func (p *Preparer) distance(ink []float32, w, x0, y0, x1, y1 int, inside bool) []float32 {
	bw, bh := x1-x0, y1-y0
	const far = 1e9
	edge := float32(0) // the value outside the box
	if !inside {
		edge = far
	}
	// The passes run on the box with a border of edge around it, so that no neighbour needs a bounds test; the
	// result is then moved, in place, to a bw-wide layout.
	pw := bw + 2
	p.dist = grow(p.dist, pw*(bh+2))
	d := p.dist
	for x := range pw {
		d[x], d[(bh+1)*pw+x] = edge, edge
	}
	for y := range bh {
		row := ink[(y0+y)*w+x0:][:bw]
		out := d[(y+1)*pw:][:pw]
		out[0], out[pw-1] = edge, edge
		out = out[1 : bw+1]
		for x, v := range row {
			if (v >= 0.5) == inside {
				out[x] = far
			} else {
				out[x] = 0
			}
		}
	}
	const diag = 1.4142
	for y := 1; y <= bh; y++ {
		up, cur := d[(y-1)*pw:][:pw], d[y*pw:][:pw]
		for x := 1; x <= bw; x++ {
			if v := cur[x]; v > 0 {
				cur[x] = min(v, cur[x-1]+1, up[x]+1, up[x-1]+diag, up[x+1]+diag)
			}
		}
	}
	for y := bh; y >= 1; y-- {
		cur, down := d[y*pw:][:pw], d[(y+1)*pw:][:pw]
		for x := bw; x >= 1; x-- {
			if v := cur[x]; v > 0 {
				cur[x] = min(v, cur[x+1]+1, down[x]+1, down[x+1]+diag, down[x-1]+diag)
			}
		}
	}
	for y := range bh {
		copy(d[y*bw:][:bw], d[(y+1)*pw+1:][:bw]) // each row moves to a lower index, so rows never overwrite unread ones
	}
	return d[:bw*bh]
}

// inkBox returns the bounding box of the nonzero ink within [x0, x1) x [y0, y1), or that box when it has none.
func (p *Preparer) inkBox(ink []float32, w, x0, y0, x1, y1 int) (int, int, int, int) {
	bx0, by0, bx1, by1 := x1, y1, x0, y0
	for y := y0; y < y1; y++ {
		for x, v := range ink[y*w+x0 : y*w+x1] {
			if v != 0 {
				bx0, by0, bx1, by1 = min(bx0, x0+x), min(by0, y), max(bx1, x0+x+1), max(by1, y+1)
			}
		}
	}
	if bx1 <= bx0 {
		return x0, y0, x1, y1
	}
	return bx0, by0, bx1, by1
}

// inkDepth returns how deep the ink of the box [x0, x1) x [y0, y1) of the w-wide working image is, relative to the
// box's longer side: the greatest distance of a pixel of ink to the paper. A stroke is as deep as half its width
// (MNIST's pens: about 0.05, a bold marker's up to about 0.15 where strokes meet); a filled shape, a disc, a square,
// a blot, as deep as half its size.
func (p *Preparer) inkDepth(ink []float32, w, x0, y0, x1, y1 int) float64 {
	var deepest float32
	for _, d := range p.distance(ink, w, x0, y0, x1, y1, true) {
		deepest = max(deepest, d)
	}
	return float64(deepest) / float64(max(x1-x0, y1-y0))
}
