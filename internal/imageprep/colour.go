package imageprep

import (
	"image"
	"image/color"
)

// colourScratch holds the buffers of the colour resize: the sums of the three premultiplied channels over each cell
// of the working image, then their means, one plane after the other.
type colourScratch struct {
	sum    []uint64
	planes []float32
}

// resizeColour is resize for colour: it area-averages img by the same integer factor, then resamples each of the
// red, green and blue planes with the same kernels as resize resamples luminance, into dst's three w x h planes.
// Transparent pixels count as black in every channel, as they do in luminance, so a gray image gives three planes
// equal to the gray vector.
func (p *Preparer) resizeColour(dst []float32, img image.Image, w, h int) {
	b := img.Bounds()
	f := max(1, min(b.Dx()/w, b.Dy()/h))
	ww, wh := p.reduceColour(img, f)
	p.kx.set(w, 0, float64(b.Dx())/float64(f), ww, false)
	p.ky.set(h, 0, float64(b.Dy())/float64(f), wh, false)
	n := w * h
	for c := range 3 {
		out := dst[c*n : (c+1)*n]
		p.tmp = resample(out, w, h, p.rgb.planes[c*ww*wh:(c+1)*ww*wh], ww, &p.kx, &p.ky, p.tmp)
		for i, v := range out {
			out[i] = min(max(v, 0), 1)
		}
	}
}

// reduceColour area-averages img by the integer factor f into p.rgb.planes: three planes of ww x wh cells, each
// cell the mean premultiplied (composited over black) red, green or blue in 0..1. The sums are kept in 16-bit units,
// as image/color's RGBA method gives them, so every image type is summed alike; the common types are read from their
// pixel slices, others through image.Image.At.
func (p *Preparer) reduceColour(img image.Image, f int) (ww, wh int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ww, wh = (w+f-1)/f, (h+f-1)/f
	n := ww * wh
	s := &p.rgb
	s.sum = grow(s.sum, 3*n)
	clear(s.sum)
	p.cell = grow(p.cell, w)
	cell := p.cell
	for x := range cell {
		cell[x] = int32(x / f)
	}
	add := func(i int, r, g, bl uint32) {
		s.sum[i] += uint64(r)
		s.sum[n+i] += uint64(g)
		s.sum[2*n+i] += uint64(bl)
	}
	for y := range h {
		row := y / f * ww
		switch m := img.(type) {
		case *image.RGBA:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for x, c := range cell {
				q := pix[4*x : 4*x+4 : 4*x+4]
				add(row+int(c), uint32(q[0])*0x101, uint32(q[1])*0x101, uint32(q[2])*0x101)
			}
		case *image.Gray:
			pix := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, c := range cell {
				v := uint32(pix[x]) * 0x101
				add(row+int(c), v, v, v)
			}
		case *image.YCbCr:
			for x, c := range cell {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				add(row+int(c), uint32(r)*0x101, uint32(g)*0x101, uint32(bl)*0x101)
			}
		default:
			for x, c := range cell {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				add(row+int(c), r, g, bl)
			}
		}
	}
	s.planes = grow(s.planes, 3*n)
	full := float64(f * f)
	for cy := range wh {
		ch := min(f, h-cy*f)
		for cx := range ww {
			area := full
			if cw := min(f, w-cx*f); cw*ch != f*f {
				area = float64(cw * ch)
			}
			inv := 1 / (area * 65535)
			i := cy*ww + cx
			for c := range 3 {
				s.planes[c*n+i] = float32(float64(s.sum[c*n+i]) * inv)
			}
		}
	}
	return ww, wh
}

// Colour returns the channel-planar w x h colour vector v (values 0..1) as an image, to look at what a model is
// given.
func Colour(v []float32, w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	n := w * h
	for i := range min(len(v)/3, n) {
		for c := range 3 {
			m.Pix[4*i+c] = uint8(min(max(v[c*n+i], 0), 1)*255 + 0.5)
		}
		m.Pix[4*i+3] = 255
	}
	return m
}
