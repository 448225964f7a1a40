package imageprep

import "math/bits"

// On an MNIST-like image the ink is a table lookup of the pixel's level (see mnistFast), most pixels are the
// background's level, whose ink is 0, and the ink grows with the level from the background's side, so the pixels of
// nonzero ink are those past one level. The only pass over single pixels is the histogram's (levelHist), over the
// pixels that are not the first pixel's level, which also sums their columns and rows per level: the moments of fit
// are then sums over the levels present (see inkSums). mnistBits finds the pixels of ink, a bit mask per row, with
// vector compares of the levels (levelMask); it finds the runs of keepComponents in the masks with a count of trailing
// zeros per run, and bounds the depth of the ink (fastFinish) with the longest runs of the masks, measured with a few
// word operations per row. Where the ink fits as it is (scale 1, all of it kept, too small for the stroke step), fit
// is then the box's levels looked up in the table; elsewhere the ink image is written and the later steps run on it as
// in mnist. Rows are one word each, so this takes images up to bitRowMax pixels wide.

// bitRowMax is the widest image mnistBits takes.
const bitRowMax = 64

// levelSums packs, for one level, the number of its pixels and the sums of their columns and rows (see levelHist):
// in an image of fewer than 2*maxSample = 2^15 pixels, at most 64 wide and 256 high, the count takes 15 bits, the
// column sum 21 and the row sum 23, so one addition per pixel keeps all three.
const (
	sumCount = 0         // the shift of the count
	sumX     = 16        // of the sum of columns
	sumY     = 37        // of the sum of rows
	countOf  = 1<<16 - 1 // the mask of the count
	sumXOf   = 1<<21 - 1 // of the sum of columns, once shifted
)

// levelHist adds to sums (see levelSums) the count of each level of the w-wide levels, and for w at most bitRowMax the
// sums of the columns and rows of its pixels (for a wider image these stay 0), except the columns and rows of the
// pixels whose level is first; it sets in mask (len(levels) bits, row-major) the bit of each pixel whose level is not
// first, and present to the bits of the levels that occur. The sums take the pixels of the mask a word of it at a
// time, so that their loops end at unpredictable counts once per 64 pixels; the row of a pixel is its index times the
// inverse of w in fixed point, exact below 2^15 pixels (with 32 bits of fraction the error is below 2^-17 < 1/w). The
// count, column and row of a pixel go in one addition, so that a run of pixels of the same level waits on one chain
// of stores and loads rather than three.
func levelHist(levels []byte, w int, first byte, sums *[256]uint64, mask []uint64, present *[4]uint64) {
	levelMask(mask, levels, first, levelOther)
	other := 0
	for _, m := range mask {
		other += bits.OnesCount64(m)
	}
	// A pixel stores its level's flag rather than setting its bit of present, which would wait on the last pixel's
	// whenever both levels are of the same 64; the vector compares of levelMask gather the flags into present.
	var seen [256]byte
	if w <= bitRowMax {
		inv := (1<<32 + uint64(w) - 1) / uint64(w)
		// 1 + i<<sumX + y*rowStep is 1<<sumCount + x<<sumX + y<<sumY, where x = i - y*w.
		rowStep := uint64(1)<<sumY - uint64(w)<<sumX
		for k, m := range mask {
			for ; m != 0; m &= m - 1 {
				i := uint64(k<<6 | bits.TrailingZeros64(m))
				b := levels[i]
				sums[b] += 1<<sumCount + i<<sumX + (i*inv>>32)*rowStep
				seen[b] = 1
			}
		}
	} else {
		for k, m := range mask {
			for ; m != 0; m &= m - 1 {
				b := levels[k<<6|bits.TrailingZeros64(m)]
				sums[b] += 1 << sumCount
				seen[b] = 1
			}
		}
	}
	sums[first] += uint64(len(levels)-other) << sumCount
	if len(levels) > other {
		seen[first] = 1
	}
	levelMaskBlocks(present[:], seen[:], 0, levelOther)
}

// The comparisons of levelMask.
const (
	levelOther   = iota // the level is not c
	levelAtLeast        // the level is at least c
	levelAtMost         // the level is at most c
)

// levelMask sets in mask (len(levels) bits, row-major) the bit of each level that op selects with c, and clears the
// others, 64 levels at a time with vector compares (on amd64).
func levelMask(mask []uint64, levels []byte, c byte, op int) {
	full := len(levels) / 64
	levelMaskBlocks(mask[:full], levels, uint64(c)*0x0101010101010101, op)
	if len(levels) > 64*full {
		levelMaskTail(mask[full:full+1], levels[64*full:], c, op)
	}
}

// levelMaskTail is levelMask a level at a time.
func levelMaskTail(mask []uint64, levels []byte, c byte, op int) {
	clear(mask)
	for i, b := range levels {
		in := b >= c
		switch op {
		case levelOther:
			in = b != c
		case levelAtMost:
			in = b <= c
		}
		if in {
			mask[i>>6] |= 1 << (i & 63)
		}
	}
}

// inkTable maps a level to its ink (see mnistFast) for the levels an image holds. Only the entries of the levels
// present are written and read, so the table is kept in the Preparer and never cleared.
type inkTable struct {
	ink [256]float32 // the ink before normalizeInk, on a field that is not black (see mnistFast)
	v   [256]float32
}

// inkSums are the sums fit takes of the ink, over the whole image, in units of 2^-28: the mass, its moments about
// column 0 and row 0, and the peak. When every nonzero ink is at least 2^-5 (exact), each is a float32 multiple of
// 2^-28, and every product and sum fit makes of them (at most 2^15 pixels, 256 rows and 64 columns) is a multiple of
// 2^-28 below 2^23, which float64 holds exactly: then fit's float64 sums, in whatever order, are these integers
// exactly, and its moments about the box's corner are these less the corner times the mass. The sums are taken a
// level at a time, from the level's ink and its levelSums, in integers, so in any order.
type inkSums struct {
	mass, mx, my, peak int64
}

// add adds to s the pixels of a level whose ink is f (in units of 2^-28) and whose levelSums are a.
func (s *inkSums) add(f int64, a uint64) {
	s.mass += f * int64(a&countOf)
	s.mx += f * int64(a>>sumX&sumXOf)
	s.my += f * int64(a>>sumY)
	s.peak = max(s.peak, f)
}

// firstSums sets the sums of columns and rows of level first in sums (see levelHist, which leaves them out): those of
// the whole w x h image less those of the other levels present.
func firstSums(sums *[256]uint64, first byte, w, h int, present *[4]uint64) {
	sx, sy := uint64(h*w*(w-1)/2), uint64(w*h*(h-1)/2)
	for k, word := range present {
		for ; word != 0; word &= word - 1 {
			if b := k<<6 | bits.TrailingZeros64(word); b != int(first) {
				sx -= sums[b] >> sumX & sumXOf
				sy -= sums[b] >> sumY
			}
		}
	}
	sums[first] = sums[first]&countOf | sx<<sumX | sy<<sumY
}

// inkRows returns, for each of the h rows of the w-wide levels, the mask of its pixels of nonzero ink: those whose
// level is at least c (op levelAtLeast) or at most c (levelAtMost), for the ink grows monotonically with the level from
// the background's side (see mnistFast). It takes mask (a bit per pixel) for its scratch.
func (p *Preparer) inkRows(levels []byte, w, h int, c byte, op int, mask []uint64) []uint64 {
	levelMask(mask, levels, c, op)
	p.rows = grow(p.rows, 2*h) // and the rows of halfRows
	ink := p.rows[:h]
	for y := range h {
		ink[y] = rowBits(mask, y*w, w)
	}
	return ink
}

// inkImage writes in p.ink, and returns, the w x h ink image whose pixels of nonzero ink rows masks: the ink of their
// levels.
func (p *Preparer) inkImage(rows []uint64, levels []byte, w, h int, t *inkTable) []float32 {
	p.ink = grow(p.ink, w*h)
	img := p.ink[:w*h]
	clear(img)
	for y, r := range rows {
		row, out := levels[y*w:][:w], img[y*w:][:w]
		for ; r != 0; r &= r - 1 {
			x := bits.TrailingZeros64(r)
			out[x] = t.v[row[x]]
		}
	}
	return img
}

// rowBits returns the w bits of the row-major bits m from bit off on.
func rowBits(m []uint64, off, w int) uint64 {
	r := m[off>>6] >> (off & 63)
	if off&63+w > 64 {
		r |= m[off>>6+1] << (64 - off&63)
	}
	return r & (1<<w - 1)
}

// halfRows returns the masks of the pixels of ink at least 0.5 in the rows of the w-wide levels whose pixels of
// nonzero ink rows masks (the masks of inkRows, which leaves room for these after them).
func (p *Preparer) halfRows(rows []uint64, levels []byte, w int, t *inkTable) []uint64 {
	half := p.rows[len(rows):][:len(rows)]
	for y, r := range rows {
		row := levels[y*w:][:w]
		var hf uint64
		for ; r != 0; r &= r - 1 {
			if x := bits.TrailingZeros64(r); t.v[row[x]] >= 0.5 {
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

// keepComponentsBits is keepComponents for the ink given as row masks of the w-wide levels, whose ink t gives: it
// finds the same runs, with the same masses, and erases those it drops from the masks; dropped says whether it did.
// The masses are summed only when there are two components or more: one component keeps all its ink whatever it
// weighs (see keptBox).
func (p *Preparer) keepComponentsBits(rows []uint64, levels []byte, t *inkTable, w, h int) (x0, y0, x1, y1 int, dropped, ok bool) {
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
		for _, b := range levels[int(r.y)*w:][r.x0:r.x1] {
			m += float64(t.v[b])
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
			dropped = true
		}
	}
	return x0, y0, x1, y1, dropped, true
}

// mnistBits is the rest of mnistFast, from the ink's table on, for an image at most bitRowMax pixels wide: t maps the
// levels to their ink, nonzero exactly at the levels c and op select (see inkRows), sums are the sums of the ink (see
// inkSums), exact says that every nonzero ink is at least 2^-5, and mask is scratch of a bit per pixel. It reports
// what fastFinish would.
func (p *Preparer) mnistBits(dst []float32, dw, dh int, levels []byte, w, h int, t *inkTable, c byte, op int, sums inkSums, exact bool, mask []uint64) (digit bool) {
	rows := p.inkRows(levels, w, h, c, op, mask)
	x0, y0, x1, y1, dropped, ok := p.keepComponentsBits(rows, levels, t, w, h)
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
	deep := p.runsOf(rows, 2*q-1) && p.runsOf(p.halfRows(rows, levels, w, t), 2*q-1)
	s, pw, ph := fitSize(dw, dh, x1-x0, y1-y0)
	if deep || side >= minStrokeSide || s != 1 || pw != x1-x0 || ph != y1-y0 || dropped || !exact {
		ink := p.inkImage(rows, levels, w, h, t)
		if deep && p.inkDepth(ink, w, x0, y0, x1, y1) > maxInkDepth {
			return false
		}
		x0, y0, x1, y1 = p.normalizeStroke(ink, w, h, x0, y0, x1, y1)
		return p.fit(dst, dw, dh, ink, w, h, x0, y0, x1, y1)
	}
	// fit, where the box is copied as it is and holds all the ink: its sums are those of the levels (see inkSums),
	// and its pixels of nonzero ink those of the masks, written into dst, which is all zeros.
	const unit = 0x1p-28
	mass := float64(sums.mass) * unit
	mx := float64(sums.mx-int64(x0)*sums.mass) * unit
	my := float64(sums.my-int64(y0)*sums.mass) * unit
	gain, ox, oy := place(dw, dh, pw, ph, float64(sums.peak)*unit, mass, mx, my)
	for y := y0; y < y1; y++ {
		row, out := levels[y*w+x0:][:pw], dst[(oy+y-y0)*dw+ox:][:pw]
		if gain == 1 {
			for x, b := range row {
				out[x] = t.v[b] // the ink is at most 1: min(v*1, 1) is v
			}
			continue
		}
		for x, b := range row {
			out[x] = min(t.v[b]*gain, 1)
		}
	}
	return true
}
