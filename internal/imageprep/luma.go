package imageprep

import (
	"image"
	"image/color"
)

// workSide is the longest side of the working image of the mnist mode. A larger image is first area-averaged by an
// integer factor down to at most this size: every later step then costs the same whatever the upload's size, and a
// digit that fills a tenth of a 2000x2000 page is still 25 pixels tall, more than the 20 it ends up as.
const workSide = 256

// workFactor is the least integer factor that brings an image of bounds b down to workSide pixels a side.
func workFactor(b image.Rectangle) int {
	return (max(b.Dx(), b.Dy()) + workSide - 1) / workSide
}

// Luminance weights of ITU-R BT.601 in 16.16 fixed point, as image/color's GrayModel uses, so a gray image's values
// come through unchanged.
const (
	wR = 19595
	wG = 38470
	wB = 7471
)

// gray8 maps an 8-bit level to 0..1 exactly as the general path of reduce computes it for a whole cell of one pixel.
var gray8 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(float64(i) * (1.0 / 255))
	}
	return t
}()

func lum8(r, g, b uint8) uint32 {
	return (wR*uint32(r) + wG*uint32(g) + wB*uint32(b) + 1<<15) >> 16
}

// lum16 is lum8 for 16-bit samples; the weights add up to 65536, so the sum fits in 32 bits.
func lum16(r, g, b uint32) uint32 {
	return (wR*r + wG*g + wB*b + 1<<15) >> 16
}

// reduction is the result of reduce: the image area-averaged into ww x wh cells of f x f pixels.
type reduction struct {
	ww, wh int
	// opaque is set when every pixel had full alpha (or the image type has no alpha).
	opaque bool
	// meanInk is the alpha-weighted mean luminance of the whole image in 0..1: for a canvas drawing with a
	// transparent background, the colour of the strokes.
	meanInk float64
}

// reduce area-averages img by the integer factor f: p.lum gets each cell's mean premultiplied luminance (that is,
// composited over black) and p.alpha its mean alpha, both in 0..1 and row-major. The common concrete image types are
// read straight from their pixel slices; others go through the slow image.Image.At interface.
func (p *Preparer) reduce(img image.Image, f int) reduction {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ww, wh := (w+f-1)/f, (h+f-1)/f
	n := ww * wh
	if g, ok := img.(*image.Gray); ok && f == 1 {
		// The commonest small upload, an 8-bit gray digit at its own size, needs no sums: one table lookup a pixel.
		p.lum = grow(p.lum, n)
		var tot uint64
		for y := range h {
			pix := g.Pix[g.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			row := p.lum[y*w:][:w]
			for x, v := range pix {
				row[x] = gray8[v]
				tot += uint64(v)
			}
		}
		return reduction{ww: w, wh: h, opaque: true, meanInk: float64(tot) / float64(255*n)}
	}
	p.sumY = grow(p.sumY, n)
	p.sumA = grow(p.sumA, n)
	clear(p.sumY)
	p.cell = grow(p.cell, w)
	cell := p.cell
	for x := range cell {
		cell[x] = int32(x / f)
	}

	// scaleY and scaleA are the values of full intensity in the sums' units; alpha is only summed when the type can
	// carry it.
	scaleY, scaleA, hasAlpha := uint64(65535), uint64(65535), true
	switch m := img.(type) {
	case *image.Gray, *image.YCbCr:
		scaleY, hasAlpha = 255, false
	case *image.Gray16:
		hasAlpha = false
	case *image.RGBA:
		scaleY, scaleA = 255, 255
	case *image.NRGBA, *image.NYCbCrA:
		scaleY, scaleA = 255*255, 255
	case *image.Paletted:
		p.paletteTables(m.Palette)
	}
	if hasAlpha {
		clear(p.sumA)
	}
	for y := range h {
		sy, sa := p.sumY[y/f*ww:][:ww], p.sumA[y/f*ww:][:ww]
		switch m := img.(type) {
		case *image.Gray:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, c := range cell {
				sy[c] += uint64(pix[x])
			}
		case *image.YCbCr:
			// The Y plane is the luminance already; chroma is not needed.
			pix := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, c := range cell {
				sy[c] += uint64(pix[x])
			}
		case *image.Gray16:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
			for x, c := range cell {
				sy[c] += uint64(be16(pix[2*x:]))
			}
		case *image.RGBA:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for x, c := range cell {
				q := pix[4*x : 4*x+4 : 4*x+4]
				sy[c] += uint64(lum8(q[0], q[1], q[2]))
				sa[c] += uint64(q[3])
			}
		case *image.NRGBA:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for x, c := range cell {
				q := pix[4*x : 4*x+4 : 4*x+4]
				sy[c] += uint64(lum8(q[0], q[1], q[2]) * uint32(q[3]))
				sa[c] += uint64(q[3])
			}
		case *image.NYCbCrA:
			ys := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
			as := m.A[m.AOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, c := range cell {
				sy[c] += uint64(ys[x]) * uint64(as[x])
				sa[c] += uint64(as[x])
			}
		case *image.RGBA64:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:8*w]
			for x, c := range cell {
				q := pix[8*x : 8*x+8 : 8*x+8]
				sy[c] += uint64(lum16(be16(q[0:]), be16(q[2:]), be16(q[4:])))
				sa[c] += uint64(be16(q[6:]))
			}
		case *image.NRGBA64:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:8*w]
			for x, c := range cell {
				q := pix[8*x : 8*x+8 : 8*x+8]
				a := uint64(be16(q[6:]))
				sy[c] += (uint64(lum16(be16(q[0:]), be16(q[2:]), be16(q[4:])))*a + 32767) / 65535
				sa[c] += a
			}
		case *image.Paletted:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, c := range cell {
				sy[c] += uint64(p.palY[pix[x]])
				sa[c] += uint64(p.palA[pix[x]])
			}
		default:
			for x, c := range cell {
				r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				sy[c] += uint64(lum16(r, g, bl))
				sa[c] += uint64(a)
			}
		}
	}

	p.lum = grow(p.lum, n)
	if hasAlpha {
		p.alpha = grow(p.alpha, n)
	}
	var totY, totA float64
	opaque := true
	// Whole cells share one divisor; only the cells cut by the right and bottom edges need their own.
	full := uint64(f * f)
	invY, invA := 1/float64(full*scaleY), 1/float64(full*scaleA)
	for cy := range wh {
		ch := min(f, h-cy*f)
		for cx := range ww {
			area := uint64(min(f, w-cx*f) * ch)
			iy, ia := invY, invA
			if area != full {
				iy, ia = 1/float64(area*scaleY), 1/float64(area*scaleA)
			}
			i := cy*ww + cx
			l := float64(p.sumY[i]) * iy
			totY += l
			p.lum[i] = float32(l)
			if hasAlpha {
				opaque = opaque && p.sumA[i] == area*scaleA
				a := float64(p.sumA[i]) * ia
				totA += a
				p.alpha[i] = float32(a)
			} else {
				totA++
			}
		}
	}
	r := reduction{ww: ww, wh: wh, opaque: opaque}
	if totA > 0 {
		r.meanInk = totY / totA
	}
	return r
}

// luminance returns the luminance of the working image that reduce made, compositing a transparent background over
// the colour that contrasts with the strokes (white behind dark strokes, black behind light ones): a canvas drawing
// in black or in white then comes out as strokes on a plain background, and alpha in effect becomes the ink.
func (p *Preparer) luminance(r reduction) []float32 {
	v := p.lum[:r.ww*r.wh]
	if !r.opaque {
		back := float32(0)
		if r.meanInk < 0.5 {
			back = 1
		}
		for i := range v {
			v[i] += back * (1 - p.alpha[i])
		}
	}
	return v
}

// paletteTables fills p.palY and p.palA with the premultiplied 16-bit luminance and alpha of each palette index.
// Indexes beyond the palette read as transparent black, where image.Paletted.At would panic.
func (p *Preparer) paletteTables(pal color.Palette) {
	for i := range p.palY {
		p.palY[i], p.palA[i] = 0, 0
		if i < len(pal) && pal[i] != nil {
			r, g, b, a := pal[i].RGBA()
			p.palY[i], p.palA[i] = lum16(r, g, b), a
		}
	}
}

func be16(b []byte) uint32 { return uint32(b[0])<<8 | uint32(b[1]) }

// grow returns s resized to n elements, reusing its storage when it is large enough. The contents are not cleared.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
