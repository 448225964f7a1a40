package imageprep

import (
	"image"
	"math/bits"
)

// Most uploads to a digit classifier are MNIST-like already: a small opaque gray (or gray-looking) image with ink on
// a flat field, light on black as MNIST clients send or dark on white as a scan or a canvas exported opaque. On those,
// most steps of the mnist mode are no-ops or reduce to table lookups: the working size is the image itself (f = 1, so
// no crop is refined either), the luminance is the 8-bit level over 255, the background is flat (so flatInk takes
// steps 3 to 5, whose ink at each level is its distance from the background's), the ink strength is a quantile of
// those 256 values, which a histogram gives exactly, and the stroke-width step does nothing below minStrokeSide.
// mnistFast does exactly that, and then the remaining steps with the same code as mnist, so its vector is the one
// mnist makes, bit for bit (TestFastPathMatchesThePipeline checks it on every MNIST test digit, either way round, and
// on every upload form).

// fastMaxSide bounds the images mnistFast takes: the working size of a larger one is not the image itself.
const fastMaxSide = workSide

// mnistFast is mnist for an MNIST-like img. handled is false, with nothing done, when img is not one (see
// grayLevels; the level of its first or last pixel must be within 0.02 of black or white and hold at least half of its
// pixels); otherwise digit is what mnist would report and dst holds what mnist would write.
func (p *Preparer) mnistFast(dst []float32, img image.Image, dw, dh int) (handled, digit bool) {
	levels, w, h, ok := p.grayLevels(img)
	if !ok {
		return false, false
	}
	n := w * h
	// The histogram, and the pixels whose level is not the first pixel's, which is most often the background's.
	var sums [256]uint64
	p.cand = grow(p.cand, (n+63)/64)
	cand := p.cand
	var present [4]uint64
	levelHist(levels, w, levels[0], &sums, cand, &present)
	count := func(b int) int { return int(sums[b] & countOf) }
	// flatBackground: the first of the two corner pixels (the first and the last) that is dark or light and holds at
	// least half the image is the background; the full pipeline handles any other.
	c, flat := 0, false
	for _, b := range [...]uint8{levels[0], levels[n-1]} {
		if x := gray8[b]; x > 0.02 && x < 0.98 {
			continue
		}
		if 2*count(int(b)) >= n {
			c, flat = int(b), true
			break
		}
	}
	if !flat {
		return false, false
	}
	clear(dst)

	// flatInk: the ink of level b is its distance from the background, towards the other end of the range, with
	// flatInk's own float32 arithmetic. It grows monotonically along order, from the background's side. On an exactly
	// black field, MNIST's own, it is the luminance itself, and the nonzero ink is every pixel but the background's.
	// Only the levels present are ever looked up (below, the levels absent add nothing to the count), so on another
	// field the ink is computed for them alone.
	t := &p.tab
	inkOf, order, step, nz := &gray8, 0, 1, n-count(0)
	if back := gray8[c]; c != 0 {
		inkOf, nz = &t.ink, 0
		if back >= 0.5 {
			order, step = 255, -1
		}
		for k, word := range present {
			for ; word != 0; word &= word - 1 {
				b := k<<6 | bits.TrailingZeros64(word)
				x := max(gray8[b]-back, 0)
				if step < 0 {
					x = max(back-gray8[b], 0)
				}
				t.ink[b] = x
				if x > 0 {
					nz += count(b)
				}
			}
		}
	}
	// The strength is quantileOf(the nonzero ink, 0.9), the k-th smallest nonzero ink (n < 2*maxSample, so the
	// sample is every pixel), that is the (nz-1-k)-th largest: counted from the strong end of order, as most ink of
	// an MNIST digit is at full strength.
	var strength float32
	if nz > 0 {
		rank := nz - 1 - int(0.9*float64(nz-1))
		seen := 0
		for b := 255 - order; b >= 0 && b < len(sums); b -= step {
			if count(b) == 0 || inkOf[b] == 0 {
				continue
			}
			seen += count(b)
			if seen > rank {
				strength = inkOf[b]
				break
			}
		}
	}
	if strength < minContrast {
		return true, false
	}
	bitRows := w <= bitRowMax
	if bitRows && byte(c) != levels[0] {
		firstSums(&sums, levels[0], w, h, &present)
	}
	// normalizeInk as a table of the 256 levels.
	floor, inv := relFloor*strength, 1/strength
	// Only the levels present are looked up: the table is written for them alone. The sums of the ink are those of
	// its levels (see inkSums).
	exact := true
	var moments inkSums
	lo, hi := 255, 0 // the least and greatest level of nonzero ink
	for k, word := range present {
		for ; word != 0; word &= word - 1 {
			b := k<<6 | bits.TrailingZeros64(word)
			var v float32
			if x := inkOf[b]; x >= floor {
				v = min(x*inv, 1)
			}
			if v > 0 {
				exact = exact && v >= 0x1p-5
				moments.add(int64(float64(v)*0x1p28), sums[b])
				lo, hi = min(lo, b), max(hi, b)
			}
			t.v[b] = v
		}
	}
	if bitRows {
		// The ink grows along order from the background's side, so the levels of nonzero ink are those from lo up
		// (or hi down).
		if step > 0 {
			return true, p.mnistBits(dst, dw, dh, levels, w, h, t, byte(lo), levelAtLeast, moments, exact, cand)
		}
		return true, p.mnistBits(dst, dw, dh, levels, w, h, t, byte(hi), levelAtMost, moments, exact, cand)
	}
	table := &t.v
	p.ink = grow(p.ink, n)
	ink := p.ink
	for i, b := range levels[:n] {
		ink[i] = table[b]
	}
	longH, longV := p.longestRuns(ink, w, h)
	return true, p.fastFinish(dst, dw, dh, ink, w, h, longH, longV)
}

// longestRuns returns the longest horizontal and vertical runs of ink at least 0.5 in the w x h ink, which bound how
// deep the ink is (see fastFinish).
func (p *Preparer) longestRuns(ink []float32, w, h int) (longH, longV int32) {
	p.colRun = grow(p.colRun, w)
	col := p.colRun
	clear(col)
	for y := range h {
		var runH int32
		for x, v := range ink[y*w:][:w] {
			if v >= 0.5 {
				runH++
				col[x]++
				longH, longV = max(longH, runH), max(longV, col[x])
			} else {
				runH, col[x] = 0, 0
			}
		}
	}
	return longH, longV
}

// fastFinish is the rest of mnist from step 6 on, for an image whose working size is its own (f = 1, so no crop is
// refined), given the longest horizontal and vertical runs of ink at least 0.5 (see below).
func (p *Preparer) fastFinish(dst []float32, dw, dh int, ink []float32, w, h int, longH, longV int32) (digit bool) {
	x0, y0, x1, y1, ok := p.keepComponents(ink, w, h) // 6. specks and rules, as mnist
	if !ok {
		return false
	}
	// 7. inkDepth is the greatest chamfer distance of a pixel of ink (at least 0.5) to the paper; along its row alone
	// a pixel of a run of L such pixels is at most (L+1)/2 steps of 1 from the paper, and likewise along its column.
	// Erasing specks only shortens runs. When that bound is within maxInkDepth, so is the depth.
	side := max(x1-x0, y1-y0)
	if bound := (min(longH, longV) + 1) / 2; float64(bound)/float64(side) > maxInkDepth {
		if p.inkDepth(ink, w, x0, y0, x1, y1) > maxInkDepth {
			return false
		}
	}
	x0, y0, x1, y1 = p.normalizeStroke(ink, w, h, x0, y0, x1, y1)
	return p.fit(dst, dw, dh, ink, w, h, x0, y0, x1, y1)
}

// A canvas drawing is ink on a transparent field, which the luminance step composites over white (dark ink) or black
// (light ink): the background then is flat at exactly 1 or 0. Up to workSide pixels a side the working image is the
// image itself; mnistAlpha then fills p.lum and p.alpha as reduce does for f = 1, with the same arithmetic but
// without its per-cell sums, and runs the same luminance, flatInk and later steps as mnist, skipping the distance
// transform where the runs of ink bound it (see fastFinish).

// mnistAlpha is mnist for an RGBA or NRGBA img of at most fastMaxSide pixels a side whose luminance has a flat
// background. handled is false, with dst untouched, for any other image; otherwise digit is what mnist would report
// and dst holds what mnist would write.
func (p *Preparer) mnistAlpha(dst []float32, img image.Image, dw, dh int) (handled, digit bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > fastMaxSide || h > fastMaxSide || w*h < 16 {
		return false, false
	}
	var pix []byte
	var stride, off int
	var scaleY uint32 // as reduce: full intensity in the units of the luminance summed
	switch m := img.(type) {
	case *image.RGBA:
		pix, stride, off, scaleY = m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 255
	case *image.NRGBA:
		pix, stride, off, scaleY = m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 255*255
	default:
		return false, false
	}
	n := w * h
	p.lum = grow(p.lum, n)
	p.alpha = grow(p.alpha, n)
	invY, invA := 1/float64(scaleY), 1/float64(255)
	var totY, totA float64
	opaque := true
	for y := range h {
		row := pix[off+y*stride:][:4*w]
		lum, alpha := p.lum[y*w:][:w], p.alpha[y*w:][:w]
		for x := range lum {
			q := row[4*x : 4*x+4 : 4*x+4]
			sy := lum8(q[0], q[1], q[2])
			if scaleY != 255 {
				sy *= uint32(q[3])
			}
			l := float64(sy) * invY
			totY += l
			lum[x] = float32(l)
			opaque = opaque && q[3] == 255
			a := float64(q[3]) * invA
			totA += a
			alpha[x] = float32(a)
		}
	}
	r := reduction{ww: w, wh: h, opaque: opaque}
	if totA > 0 {
		r.meanInk = totY / totA
	}
	v := p.luminance(r)
	back, flat := flatBackground(v)
	if !flat {
		return false, false
	}
	clear(dst)
	ink, digit := p.flatInk(v, back)
	if !digit {
		return true, false
	}
	longH, longV := p.longestRuns(ink, w, h)
	return true, p.fastFinish(dst, dw, dh, ink, w, h, longH, longV)
}

// grayLevels returns the 8-bit luminance levels of img, row-major in a w x h buffer of p's, when reduce would give
// exactly gray8 of them with the image opaque: an 8-bit gray image, or an RGBA or NRGBA one whose every pixel is
// opaque (lum8 of a gray colour is its level; the tests check that the NRGBA sums divide back to gray8), of at most
// fastMaxSide pixels a side and fewer than 2*maxSample pixels. ok is false otherwise.
func (p *Preparer) grayLevels(img image.Image) (levels []byte, w, h int, ok bool) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	if w > fastMaxSide || h > fastMaxSide || w*h >= 2*maxSample || w*h < 16 {
		return nil, 0, 0, false
	}
	switch m := img.(type) {
	case *image.Gray:
		if m.Stride == w {
			return m.Pix[:w*h], w, h, true // rows back to back (the PNG decoder's image): read where they lie, never written
		}
		p.levels = grow(p.levels, w*h)
		levels = p.levels
		for y := range h {
			copy(levels[y*w:][:w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w])
		}
	case *image.RGBA:
		p.levels = grow(p.levels, w*h)
		levels = p.levels
		if !opaqueRGBA(levels, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h) {
			return nil, 0, 0, false
		}
	case *image.NRGBA:
		p.levels = grow(p.levels, w*h)
		levels = p.levels
		if !opaqueRGBA(levels, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h) {
			return nil, 0, 0, false
		}
	default:
		return nil, 0, 0, false
	}
	return levels, w, h, true
}

// opaqueRGBA writes the luminance levels of the w x h RGBA (or NRGBA) pixels starting at pix[off] into levels, and
// reports whether all of them were opaque (with full alpha NRGBA and RGBA are the same colours).
func opaqueRGBA(levels, pix []byte, stride, off, w, h int) bool {
	for y := range h {
		row := pix[off+y*stride:][:4*w]
		out := levels[y*w:][:w]
		for x := range out {
			q := row[4*x : 4*x+4 : 4*x+4]
			if q[3] != 255 {
				return false
			}
			out[x] = uint8(lum8(q[0], q[1], q[2]))
		}
	}
	return true
}
