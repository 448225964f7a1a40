package imageprep

import (
	"encoding/binary"
	"math/bits"
)

// On an MNIST-like image the ink is a table lookup of the pixel's level (see mnistFast), and most pixels are the
// background's level, whose ink is 0. mnistBits therefore visits only the other pixels: in one pass over them it
// writes the ink image, keeps per row a bit mask of the pixels of ink, and sums the moments of fit in fixed point
// (see inkSums); it finds the runs of keepComponents in the masks with a count of trailing zeros per run, and bounds
// the depth of the ink (fastFinish) with the longest runs of the masks, measured with a few word operations per row.
// Where the ink fits as it is (scale 1, all of it kept, too small for the stroke step), fit is then a copy of the rows
// of the box; elsewhere the later steps run on the ink image as in mnist. Rows are one word each, so this takes
// images up to bitRowMax pixels wide.

// bitRowMax is the widest image mnistBits takes.
const bitRowMax = 64

// levelHist adds the histogram of levels to hist, sets in mask (len(levels) bits, row-major, zero on entry) the bit
// of each pixel whose level is not first, and in present the bit of each level that occurs. The mask is made first,
// eight pixels at a time with a few word operations and no branch (on an MNIST-like image most are background); the
// histogram then counts the pixels of the mask a word of it at a time, so that its loops end at unpredictable counts
// once per 64 pixels rather than once per 8.
func levelHist(levels []byte, first byte, hist *[256]int32, mask []uint64, present *[4]uint64) {
	const lo7, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	rep := uint64(first) * 0x0101010101010101
	n := len(levels)
	i := 0
	for ; i+64 <= n; i += 64 {
		var m uint64
		for k := 0; k < 64; k += 8 {
			x := binary.LittleEndian.Uint64(levels[i+k:]) ^ rep
			// The top bit of each byte of x that is not zero (no carry crosses bytes), gathered into 8 bits.
			t := ((x&lo7 + lo7) | x) & hi
			m |= (t >> 7) * 0x0102040810204080 >> 56 << k
		}
		mask[i>>6] = m
	}
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(levels[i:]) ^ rep
		t := ((x&lo7 + lo7) | x) & hi
		mask[i>>6] |= (t >> 7) * 0x0102040810204080 >> 56 << (i & 63)
	}
	for ; i < n; i++ {
		if levels[i] != first {
			mask[i>>6] |= 1 << (i & 63)
		}
	}
	other := 0
	for k, m := range mask {
		other += bits.OnesCount64(m)
		for ; m != 0; m &= m - 1 {
			b := levels[k<<6|bits.TrailingZeros64(m)]
			hist[b]++
			present[b>>6] |= 1 << (b & 63)
		}
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

// inkTable maps a level to its ink (see mnistFast) for the levels an image holds: v is the ink, and fix the same value
// in units of 2^-28 (see inkSums). Only the entries of the levels present are written and read, so the table is kept in
// the Preparer and never cleared.
type inkTable struct {
	ink [256]float32 // the ink before normalizeInk, on a field that is not black (see mnistFast)
	v   [256]float32
	fix [256]int64
}

// inkSums are the sums fit takes of the ink, over the whole image, in units of 2^-28: the mass, its moments about
// column 0 and row 0, and the peak. When every nonzero ink is at least 2^-5 (exact), each is a float32 multiple of
// 2^-28, and every product and sum fit makes of them (at most 2^15 pixels, 256 rows and 64 columns) is a multiple of
// 2^-28 below 2^23, which float64 holds exactly: then fit's float64 sums, in whatever order, are these integers
// exactly, and its moments about the box's corner are these less the corner times the mass.
type inkSums struct {
	mass, mx, my, peak int64
}

// inkRows returns, for each of the h rows of the w-wide levels, the mask of its pixels of nonzero ink, writes the w x h
// ink image in p.ink, and sums its moments; only the pixels set in cand (row-major bits) can be ink.
func (p *Preparer) inkRows(levels []byte, w, h int, cand []uint64, t *inkTable) (ink []uint64, img []float32, s inkSums) {
	p.rows = grow(p.rows, 2*h) // and the rows of halfRows
	ink = p.rows[:h]
	p.ink = grow(p.ink, w*h)
	img = p.ink[:w*h]
	clear(img)
	for y := range h {
		off := y * w
		row, out := levels[off:][:w], img[off:][:w]
		var r uint64
		var mass, mx int64
		for m := rowBits(cand, off, w); m != 0; m &= m - 1 {
			x := bits.TrailingZeros64(m)
			b := row[x]
			f := t.fix[b]
			r |= uint64(-f) >> 63 << (x & 63) // f is not negative: its negation is, when f is not 0
			out[x] = t.v[b]
			mass += f
			mx += f * int64(x)
			s.peak = max(s.peak, f)
		}
		ink[y] = r
		s.mass += mass
		s.mx += mx
		s.my += mass * int64(y)
	}
	return ink, img, s
}

// rowBits returns the w bits of the row-major bits m from bit off on.
func rowBits(m []uint64, off, w int) uint64 {
	r := m[off>>6] >> (off & 63)
	if off&63+w > 64 {
		r |= m[off>>6+1] << (64 - off&63)
	}
	return r & (1<<w - 1)
}

// halfRows returns the masks of the pixels of ink at least 0.5 in the rows of the w-wide ink image img, whose pixels
// of nonzero ink rows masks (the masks of inkRows, which leaves room for these after them).
func (p *Preparer) halfRows(rows []uint64, img []float32, w int) []uint64 {
	half := p.rows[len(rows):][:len(rows)]
	for y, r := range rows {
		out := img[y*w:][:w]
		var hf uint64
		for ; r != 0; r &= r - 1 {
			if x := bits.TrailingZeros64(r); out[x] >= 0.5 {
				hf |= 1 << (x & 63)
			}
		}
		half[y] = hf
	}
	return half
}

// runsOf reports whether the rows of ink at least 0.5, given as masks, have both a horizontal and a vertical run of
// at least n pixels: min(longestRuns) >= n. A row has a run of 2c where it has a run of c starting c further on as
// well, so the runs are measured by doubling, in a few word operations per row.
func (p *Preparer) runsOf(half []uint64, n int) bool {
	found := false
	for _, r := range half {
		if bits.OnesCount64(r) < n {
			continue // most rows of a digit, and cheaper to tell than to measure
		}
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

// keepComponentsBits is keepComponents for the ink given as row masks and as the image img: it finds the same runs,
// with the same masses, and erases those it drops from both; dropped says whether it did. The masses are summed
// only when there are two components or more: one component keeps all its ink whatever it weighs (see keptBox).
func (p *Preparer) keepComponentsBits(rows []uint64, img []float32, w, h int) (x0, y0, x1, y1 int, dropped, ok bool) {
	runs := p.runs[:0]
	// The runs of the row above that touch a run [a, e) (diagonally too) are those that meet [a-1, e]; they follow
	// one another, and the index of the one holding pixel x is the number of runs starting at x or before it, after
	// the first run of that row: linkRun's joins, found with a count of bits instead of a walk.
	var above, starts uint64 // the row above and the first pixels of its runs
	first := 0               // index of the first run of the row above
	for y := range h {
		here := len(runs)
		row := rows[y]
		for r := row; r != 0; {
			a := bits.TrailingZeros64(r)
			e := a + bits.TrailingZeros64(^(r >> a)) // r>>a starts with the run; past the row's end the bits are 0
			span := uint64(1)<<e - 1                 // 1<<64 is 0
			r &^= span
			id := int32(len(runs))
			// Appended as zeros and then set field by field: a composite literal is built on the stack and copied
			// in wide loads from its narrow stores, which the processor cannot forward.
			runs = append(runs, inkRun{})
			run := &runs[id]
			run.y, run.x0, run.x1, run.parent = int32(y), int32(a), int32(e), id
			span &^= 1<<a - 1
			if touch := above & (span | span<<1 | span>>1); touch != 0 {
				lo, hi := bits.TrailingZeros64(touch), 63-bits.LeadingZeros64(touch)
				k := first + bits.OnesCount64(starts&(2<<lo-1)) - 1
				last := first + bits.OnesCount64(starts&(2<<hi-1)) - 1
				for ; k <= last; k++ {
					union(runs, id, int32(k))
				}
			}
		}
		above, starts, first = row, row&^(row<<1), here
	}
	p.runs = runs
	if len(runs) == 0 {
		return 0, 0, 0, 0, false, false
	}
	roots := 0
	for i := range runs {
		if runs[i].parent == int32(i) {
			roots++
		}
	}
	if roots == 1 {
		// As keptBox: one component keeps all its ink, which is not zero.
		var cols uint64
		for _, r := range rows[:h] {
			cols |= r
		}
		return bits.TrailingZeros64(cols), int(runs[0].y), 64 - bits.LeadingZeros64(cols), int(runs[len(runs)-1].y) + 1, false, true
	}
	for i := range runs {
		r := &runs[i]
		var m float64
		for _, v := range img[int(r.y)*w:][r.x0:r.x1] {
			m += float64(v)
		}
		r.mass = m
	}
	x0, y0, x1, y1, ok = p.keptBox(w, h)
	if !ok {
		return 0, 0, 0, 0, false, false
	}
	for i := range runs {
		if r := &runs[i]; r.drop {
			rows[r.y] &^= (1<<(r.x1-r.x0) - 1) << r.x0
			clear(img[int(r.y)*w:][r.x0:r.x1])
			dropped = true
		}
	}
	return x0, y0, x1, y1, dropped, true
}

// mnistBits is the rest of mnistFast, from the ink's table on, for an image at most bitRowMax pixels wide: cand marks
// the pixels that are not the background's level, and t maps the levels to their ink; exact says that every nonzero
// ink is at least 2^-5 (see inkSums). It reports what fastFinish would.
func (p *Preparer) mnistBits(dst []float32, dw, dh int, levels []byte, w, h int, cand []uint64, t *inkTable, exact bool) (digit bool) {
	rows, ink, sums := p.inkRows(levels, w, h, cand, t)
	x0, y0, x1, y1, dropped, ok := p.keepComponentsBits(rows, ink, w, h)
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
	// The runs of ink at least 0.5 are measured only where those of any ink reach as far, which they seldom do. The
	// ink is the kept ink, whose runs bound its depth as well (inkDepth measures the kept ink).
	deep := p.runsOf(rows, 2*q-1) && p.runsOf(p.halfRows(rows, ink, w), 2*q-1)
	s, pw, ph := fitSize(dw, dh, x1-x0, y1-y0)
	if deep || side >= minStrokeSide || s != 1 || pw != x1-x0 || ph != y1-y0 || dropped || !exact {
		if deep && p.inkDepth(ink, w, x0, y0, x1, y1) > maxInkDepth {
			return false
		}
		x0, y0, x1, y1 = p.normalizeStroke(ink, w, h, x0, y0, x1, y1)
		return p.fit(dst, dw, dh, ink, w, h, x0, y0, x1, y1)
	}
	// fit, where the box is copied as it is and holds all the ink: its sums are those of inkRows (see inkSums).
	const unit = 0x1p-28
	mass := float64(sums.mass) * unit
	mx := float64(sums.mx-int64(x0)*sums.mass) * unit
	my := float64(sums.my-int64(y0)*sums.mass) * unit
	gain, ox, oy := place(dw, dh, pw, ph, float64(sums.peak)*unit, mass, mx, my)
	for y := y0; y < y1; y++ {
		in, out := ink[y*w+x0:][:pw], dst[(oy+y-y0)*dw+ox:][:pw]
		if gain == 1 {
			copy(out, in) // the ink is at most 1: min(v*1, 1) is v
			continue
		}
		for x, v := range in {
			out[x] = min(v*gain, 1)
		}
	}
	return true
}
