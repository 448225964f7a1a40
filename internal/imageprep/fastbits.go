package imageprep

import (
	"encoding/binary"
	"math/bits"
)

// On an MNIST-like image the ink is a table lookup of the pixel's level (see mnistFast), and most pixels are the
// background's level, whose ink is 0. mnistBits therefore never builds the float ink image: it keeps, per row, a bit
// mask of the pixels that are ink and one of those at least 0.5, finds the runs of keepComponents from the first with
// a count of trailing zeros per run, the longest runs of fastFinish from the second with a few word operations per
// row, and sums the moments of fit over the set bits only (adding the zeros the full pipeline adds changes no sum,
// and the zeros it writes are those clear left). Only where a later step needs the ink itself (a scale other than 1,
// a depth the runs do not bound, a digit large enough for the stroke step) is the ink image made, from the masks,
// and the step runs as in mnist. Rows are one word each, so this takes images up to bitRowMax pixels wide.

// bitRowMax is the widest image mnistBits takes.
const bitRowMax = 64

// levelHist adds the histogram of levels to hist, sets in mask (len(levels) bits, row-major, zero on entry) the bit
// of each pixel whose level is not first, and in present the bit of each level that occurs. Eight pixels are tested
// at a time: on an MNIST-like image most words are all background, and each costs a compare.
func levelHist(levels []byte, first byte, hist *[256]int32, mask []uint64, present *[4]uint64) {
	const lo7, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	rep := uint64(first) * 0x0101010101010101
	n := len(levels)
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(levels[i:]) ^ rep
		if x == 0 {
			continue
		}
		// The top bit of each byte of x that is not zero (no carry crosses bytes), gathered into the low 8 bits.
		t := ((x&lo7 + lo7) | x) & hi
		m := uint((t >> 7) * 0x0102040810204080 >> 56)
		mask[i>>6] |= uint64(m) << (i & 63)
		for ; m != 0; m &= m - 1 {
			b := levels[i+bits.TrailingZeros(m)]
			hist[b]++
			present[b>>6] |= 1 << (b & 63)
		}
	}
	for ; i < n; i++ {
		if b := levels[i]; b != first {
			hist[b]++
			present[b>>6] |= 1 << (b & 63)
			mask[i>>6] |= 1 << (i & 63)
		}
	}
	other := 0
	for _, m := range mask {
		other += bits.OnesCount64(m)
	}
	hist[first] += int32(n - other)
	if n > other {
		present[first>>6] |= 1 << (first & 63)
	}
}

// otherLevels sets in mask (zeroed first) the bit of each pixel whose level is not c.
func otherLevels(levels []byte, c byte, mask []uint64) {
	clear(mask)
	for i, b := range levels {
		if b != c {
			mask[i>>6] |= 1 << (i & 63)
		}
	}
}

// inkRows returns, for each of the h rows of the w-wide levels, the mask of its pixels of nonzero ink and the mask of
// those of ink at least 0.5, as class says of their levels (bit 0 and bit 1); only the pixels set in cand
// (row-major bits) can be ink.
func (p *Preparer) inkRows(levels []byte, w, h int, cand []uint64, class *[256]uint8) (ink, half []uint64) {
	p.rows = grow(p.rows, 2*h)
	ink, half = p.rows[:h], p.rows[h:2*h]
	for y := range h {
		off := y * w
		m := cand[off>>6] >> (off & 63)
		if off&63+w > 64 {
			m |= cand[off>>6+1] << (64 - off&63)
		}
		m &= 1<<w - 1
		row := levels[off:][:w]
		var r, hf uint64
		for ; m != 0; m &= m - 1 {
			x := bits.TrailingZeros64(m)
			c := uint64(class[row[x]])
			r |= (c & 1) << x
			hf |= (c >> 1) << x
		}
		ink[y], half[y] = r, hf
	}
	return ink, half
}

// runsOf reports whether the rows of ink at least 0.5, given as masks, have both a horizontal and a vertical run of
// at least n pixels: min(longestRuns) >= n. A row has a run of 2c where it has a run of c starting c further on as
// well, so the runs are measured by doubling, in a few word operations per row.
func (p *Preparer) runsOf(half []uint64, n int) bool {
	found := false
	for _, r := range half {
		c := 1
		for ; 2*c <= n; c *= 2 {
			r &= r >> c
		}
		if c < n {
			r &= r >> (n - c)
		}
		if r != 0 {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	// acc[y] is the intersection of rows y to y+c-1, for the rows that have as many below them.
	p.acc = grow(p.acc, len(half))
	acc := p.acc
	copy(acc, half)
	c := 1
	for ; 2*c <= n; c *= 2 {
		if c >= len(acc) {
			return false
		}
		for y := range len(acc) - c {
			acc[y] &= acc[y+c]
		}
		acc = acc[:len(acc)-c]
	}
	if k := n - c; k > 0 {
		if k >= len(acc) {
			return false
		}
		for y := range len(acc) - k {
			acc[y] &= acc[y+k]
		}
		acc = acc[:len(acc)-k]
	}
	for _, a := range acc {
		if a != 0 {
			return true
		}
	}
	return false
}

// keepComponentsBits is keepComponents for the ink given as row masks, the ink of a pixel being table of its level:
// it finds the same runs, with the same masses, and clears the bits of those it erases.
func (p *Preparer) keepComponentsBits(rows []uint64, levels []byte, table *[256]float32, w, h int) (x0, y0, x1, y1 int, ok bool) {
	runs := p.runs[:0]
	above := 0 // first run of the previous row
	for y := range h {
		here := len(runs)
		j := above
		row := levels[y*w:][:w]
		for r := rows[y]; r != 0; {
			a := bits.TrailingZeros64(r)
			e := a + bits.TrailingZeros64(^(r >> a)) // r>>a starts with the run; past the row's end the bits are 0
			r &^= 1<<e - 1
			var m float64
			for _, b := range row[a:e] {
				m += float64(table[b])
			}
			runs, j = linkRun(runs, here, j, inkRun{y: int32(y), x0: int32(a), x1: int32(e), mass: m})
		}
		above = here
	}
	p.runs = runs
	x0, y0, x1, y1, ok = p.keptBox(w, h)
	if !ok {
		return 0, 0, 0, 0, false
	}
	for i := range runs {
		if r := &runs[i]; r.drop {
			rows[r.y] &^= (1<<(r.x1-r.x0) - 1) << r.x0
		}
	}
	return x0, y0, x1, y1, true
}

// mnistBits is the rest of mnistFast, from the ink's table on, for an image at most bitRowMax pixels wide: cand marks
// the pixels that are not the background's level, and class the levels of ink (see inkRows). It reports what
// fastFinish would.
func (p *Preparer) mnistBits(dst []float32, dw, dh int, levels []byte, w, h int, cand []uint64, table *[256]float32, class *[256]uint8) (digit bool) {
	rows, half := p.inkRows(levels, w, h, cand, class)
	x0, y0, x1, y1, ok := p.keepComponentsBits(rows, levels, table, w, h)
	if !ok {
		return false
	}
	// As fastFinish: the depth of the ink is measured only when the runs do not bound it, that is when
	// (min(longestRuns)+1)/2 steps reach deeper than maxInkDepth: when both runs reach 2q-1 pixels, q the fewest
	// steps that do.
	side := max(x1-x0, y1-y0)
	q := int(maxInkDepth * float64(side))
	for float64(q)/float64(side) <= maxInkDepth {
		q++
	}
	deep := p.runsOf(half, 2*q-1)
	s, pw, ph := fitSize(dw, dh, x1-x0, y1-y0)
	if deep || side >= minStrokeSide || s != 1 || pw != x1-x0 || ph != y1-y0 {
		ink := p.inkOfRows(rows, levels, table, w, h)
		if deep && p.inkDepth(ink, w, x0, y0, x1, y1) > maxInkDepth {
			return false
		}
		x0, y0, x1, y1 = p.normalizeStroke(ink, w, h, x0, y0, x1, y1)
		return p.fit(dst, dw, dh, ink, w, h, x0, y0, x1, y1)
	}
	// fit, where the box is copied as it is: every bit left is inside the box.
	var peak, mass, mx, my float64
	for y := y0; y < y1; y++ {
		row, fy := levels[y*w:][:w], float64(y-y0)
		for r := rows[y]; r != 0; r &= r - 1 {
			x := bits.TrailingZeros64(r)
			v := float64(table[row[x]])
			if v > peak {
				peak = v
			}
			mass += v
			mx += v * float64(x-x0)
			my += v * fy
		}
	}
	if mass == 0 {
		return false
	}
	gain, ox, oy := place(dw, dh, pw, ph, peak, mass, mx, my)
	for y := y0; y < y1; y++ {
		row, out := levels[y*w:][:w], dst[(oy+y-y0)*dw+ox:]
		for r := rows[y]; r != 0; r &= r - 1 {
			x := bits.TrailingZeros64(r)
			v := table[row[x]] * gain
			if v > 1 {
				v = 1
			}
			out[x-x0] = v
		}
	}
	return true
}

// inkOfRows makes the w x h ink image of the row masks, in p.ink.
func (p *Preparer) inkOfRows(rows []uint64, levels []byte, table *[256]float32, w, h int) []float32 {
	p.ink = grow(p.ink, w*h)
	ink := p.ink[:w*h]
	clear(ink)
	for y, r := range rows[:h] {
		row, out := levels[y*w:][:w], ink[y*w:][:w]
		for ; r != 0; r &= r - 1 {
			x := bits.TrailingZeros64(r)
			out[x] = table[row[x]]
		}
	}
	return ink
}
