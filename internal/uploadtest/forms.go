// Package uploadtest makes real MNIST digits into the forms in which digits reach the service: photos and scans of
// ink on paper, canvas drawings, 16-bit and paletted images, JPEG noise, large pages, off-centre and tightly cropped
// digits. Tests of the preprocessing and of the HTTP API use it to measure what a user would see; the service
// itself does not import it.
package uploadtest

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	"golang.org/x/image/tiff"
)

// DigitGray returns MNIST digit pix (0 background, 255 ink) as a 28x28 gray image.
func DigitGray(pix []byte) *image.Gray {
	return &image.Gray{Pix: pix, Stride: 28, Rect: image.Rect(0, 0, 28, 28)}
}

// InkMap enlarges a 28x28 digit to size x size with x/image/draw's bilinear scaler (independent of this package's
// resampler), returning ink coverage in 0..1.
func InkMap(pix []byte, size int) []float64 {
	g := image.NewGray(image.Rect(0, 0, size, size))
	draw.BiLinear.Scale(g, g.Bounds(), DigitGray(pix), image.Rect(0, 0, 28, 28), draw.Src, nil)
	ink := make([]float64, size*size)
	for i, v := range g.Pix {
		ink[i] = float64(v) / 255
	}
	return ink
}

// Paint is a page: colours per pixel as a function of position and ink coverage, plus Gaussian noise.
type Paint struct {
	Paper, Ink color.RGBA
	Noise      float64                      // standard deviation in 0..255 units
	Light      func(x, y, w, h int) float64 // illumination factor of the paper, 1 when nil
}

// RGBA paints the ink map (coverage 0..1, w x h) on the page.
func (pt Paint) RGBA(ink []float64, w, h int, rng *rand.Rand) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := ink[y*w+x]
			l := 1.0
			if pt.Light != nil {
				l = pt.Light(x, y, w, h)
			}
			px := img.Pix[img.PixOffset(x, y):]
			for c, pair := range [3][2]uint8{{pt.Paper.R, pt.Ink.R}, {pt.Paper.G, pt.Ink.G}, {pt.Paper.B, pt.Ink.B}} {
				v := (float64(pair[0])*(1-a) + float64(pair[1])*a) * l
				if pt.Noise > 0 {
					v += rng.NormFloat64() * pt.Noise
				}
				px[c] = uint8(math.Round(min(max(v, 0), 255)))
			}
			px[3] = 255
		}
	}
	return img
}

// ToGray converts an RGBA page to gray.
func ToGray(m *image.RGBA) *image.Gray {
	g := image.NewGray(m.Bounds())
	draw.Draw(g, g.Bounds(), m, m.Bounds().Min, draw.Src)
	return g
}

// Place puts a size x size ink map at (x0, y0) of a w x h page.
func Place(ink []float64, size, w, h, x0, y0 int) []float64 {
	page := make([]float64, w*h)
	for y := range size {
		copy(page[(y0+y)*w+x0:][:size], ink[y*size:][:size])
	}
	return page
}

// TightCrop cuts a size x size ink map to the bounding box of its ink (coverage above 1/255), with no margin.
func TightCrop(ink []float64, size int) ([]float64, int, int) {
	x0, y0, x1, y1 := size, size, 0, 0
	for i, v := range ink {
		if v > 1.0/255 {
			x, y := i%size, i/size
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x+1), max(y1, y+1)
		}
	}
	w, h := x1-x0, y1-y0
	out := make([]float64, w*h)
	for y := range h {
		copy(out[y*w:][:w], ink[(y0+y)*size+x0:][:w])
	}
	return out, w, h
}

// Colours of pages and inks.
var (
	Black    = color.RGBA{0, 0, 0, 255}
	White    = color.RGBA{255, 255, 255, 255}
	OffWhite = color.RGBA{236, 232, 220, 255}
	Pencil   = color.RGBA{40, 40, 48, 255}
)

// Form is one way a digit reaches the service: make encodes MNIST digit pix as file bytes.
type Form struct {
	Name string
	// Large forms are slow to encode, so tests try fewer digits.
	Large bool
	// Make encodes MNIST digit pix (784 bytes, 0 background) as the file bytes of this form.
	Make func(pix []byte, rng *rand.Rand) []byte
	// Bounds on the mean over digits of the absolute difference and of the correlation between the prepared 28x28
	// and the original MNIST digit (which is MNIST-normalised already). They leave a margin over the figures of 1000
	// digits (raw: 0.002 and 0.998; every other form: 0.029-0.034 and 0.941-0.958). The gap between raw and the rest
	// is the generator's doing more than the pipeline's: enlarging a 28x28 digit blurs it and widens it by a pixel's
	// fringe, and a centre of mass that moves by a fraction of a pixel can round to a whole-pixel shift, which alone
	// costs about 0.015 of correlation on thin strokes.
	MaxMAD, MinCorr float64
}

// EncodePNG encodes m as PNG.
func EncodePNG(m image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// EncodeJPEG encodes m as JPEG at quality q.
func EncodeJPEG(m image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// All returns every form, raw digits first.
func All() []Form {
	return []Form{
		{Name: "raw 28x28 gray PNG", MaxMAD: 0.01, MinCorr: 0.995, Make: func(pix []byte, _ *rand.Rand) []byte {
			return EncodePNG(DigitGray(pix))
		}},
		{Name: "dark ink on white paper, 280x280 gray PNG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			return EncodePNG(ToGray(Paint{Paper: White, Ink: Black}.RGBA(InkMap(pix, 280), 280, 280, rng)))
		}},
		{Name: "light ink on dark, 1000x1000 gray PNG", Large: true, MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			paper, ink := color.RGBA{30, 30, 30, 255}, color.RGBA{220, 220, 220, 255}
			return EncodePNG(ToGray(Paint{Paper: paper, Ink: ink}.RGBA(InkMap(pix, 1000), 1000, 1000, rng)))
		}},
		{Name: "blue ink on yellow paper, 280x280 RGB PNG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			paper, ink := color.RGBA{245, 225, 120, 255}, color.RGBA{30, 50, 150, 255}
			return EncodePNG(Paint{Paper: paper, Ink: ink, Noise: 4}.RGBA(InkMap(pix, 280), 280, 280, rng))
		}},
		{Name: "canvas PNG, black strokes on transparent", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, _ *rand.Rand) []byte {
			return EncodePNG(Canvas(InkMap(pix, 280), 280, color.NRGBA{0, 0, 0, 0}))
		}},
		{Name: "canvas PNG, white strokes on transparent", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, _ *rand.Rand) []byte {
			return EncodePNG(Canvas(InkMap(pix, 280), 280, color.NRGBA{255, 255, 255, 0}))
		}},
		{Name: "16-bit gray PNG, dark on light", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, _ *rand.Rand) []byte {
			ink := InkMap(pix, 140)
			g := image.NewGray16(image.Rect(0, 0, 140, 140))
			for i, a := range ink {
				g.SetGray16(i%140, i/140, color.Gray16{Y: uint16(math.Round(60000 - 55000*a))})
			}
			return EncodePNG(g)
		}},
		{Name: "16-bit RGBA PNG, light on dark", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, _ *rand.Rand) []byte {
			ink := InkMap(pix, 140)
			m := image.NewNRGBA64(image.Rect(0, 0, 140, 140))
			for i, a := range ink {
				v := uint16(math.Round(5000 + 55000*a))
				m.SetNRGBA64(i%140, i/140, color.NRGBA64{R: v, G: v, B: v / 2, A: 0xffff})
			}
			return EncodePNG(m)
		}},
		{Name: "JPEG quality 60 with noise, dark on off-white", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 12}.RGBA(InkMap(pix, 280), 280, 280, rng), 60)
		}},
		{Name: "uneven lighting, JPEG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			light := func(x, y, w, h int) float64 { return 0.55 + 0.45*float64(x+y)/float64(w+h) }
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 4, Light: light}.RGBA(InkMap(pix, 280), 280, 280, rng), 85)
		}},
		{Name: "phone photo JPEG stored sideways, EXIF Orientation 6", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			// The sensor's pixels are the upright page turned a quarter anticlockwise; the tag says to turn them back.
			ink := TurnAnticlockwise(InkMap(pix, 280), 280, 280)
			return WithOrientation(EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 4}.RGBA(ink, 280, 280, rng), 85), 6, false)
		}},
		{Name: "scan with a dark frame at its edge, 280x280 PNG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			return EncodePNG(ToGray(Paint{Paper: White, Ink: Black}.RGBA(Rule(InkMap(pix, 280), 280, 280, 0, 0, 280, 280, 2), 280, 280, rng)))
		}},
		{Name: "in a form field's box, 280x280 JPEG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			ink := Rule(Place(InkMap(pix, 200), 200, 280, 280, 40, 40), 280, 280, 16, 16, 264, 264, 3)
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 3}.RGBA(ink, 280, 280, rng), 85)
		}},
		{Name: "above a ruled line, 280x280 JPEG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			// The line is the top side of a box whose other sides are off the page.
			ink := Rule(Place(InkMap(pix, 200), 200, 280, 280, 40, 20), 280, 280, -10, 244, 290, 300, 3)
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 3}.RGBA(ink, 280, 280, rng), 85)
		}},
		{Name: "large 2000x2000 JPEG", Large: true, MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil}.RGBA(InkMap(pix, 2000), 2000, 2000, rng), 85)
		}},
		{Name: "off-centre in the corner of a 1500x1500 page, JPEG", Large: true, MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			page := Place(InkMap(pix, 300), 300, 1500, 1500, 60, 1100)
			return EncodeJPEG(Paint{Paper: OffWhite, Ink: Pencil, Noise: 3}.RGBA(page, 1500, 1500, rng), 85)
		}},
		{Name: "tight crop with no margin, dark on light PNG", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			ink, w, h := TightCrop(InkMap(pix, 280), 280)
			return EncodePNG(ToGray(Paint{Paper: White, Ink: Black}.RGBA(ink, w, h, rng)))
		}},
		// A thick pen fills most of its own crop, and its strokes touch every edge: the polarity votes must still find
		// the paper, and the strokes must be thinned to MNIST's width. Thinned strokes keep the marker's blunt shapes,
		// so the bounds are looser than for the forms that keep MNIST's own strokes.
		{Name: "bold marker, tight crop with no margin, PNG", MaxMAD: 0.075, MinCorr: 0.82, Make: func(pix []byte, rng *rand.Rand) []byte {
			ink, w, h := TightCrop(Bold(InkMap(pix, 280), 280, 14), 280)
			return EncodePNG(ToGray(Paint{Paper: White, Ink: Black}.RGBA(ink, w, h, rng)))
		}},
		// A fine pen on a large canvas: strokes a fortieth of the digit's height, to be thickened to MNIST's width.
		{Name: "fine pen on a 400x400 canvas, PNG", MaxMAD: 0.07, MinCorr: 0.78, Make: func(pix []byte, rng *rand.Rand) []byte {
			return EncodePNG(ToGray(Paint{Paper: White, Ink: Black}.RGBA(Thin(InkMap(pix, 400), 400, 14), 400, 400, rng)))
		}},
		{Name: "paletted GIF, dithered", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			paper, ink := color.RGBA{250, 240, 200, 255}, color.RGBA{150, 20, 20, 255}
			var b bytes.Buffer
			m := Paint{Paper: paper, Ink: ink}.RGBA(InkMap(pix, 140), 140, 140, rng)
			if err := gif.Encode(&b, m, &gif.Options{NumColors: 16}); err != nil {
				panic(err)
			}
			return b.Bytes()
		}},
		{Name: "BMP, dark on light", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			var b bytes.Buffer
			if err := bmp.Encode(&b, Paint{Paper: White, Ink: Pencil}.RGBA(InkMap(pix, 112), 112, 112, rng)); err != nil {
				panic(err)
			}
			return b.Bytes()
		}},
		{Name: "TIFF (deflate), light on dark", MaxMAD: 0.045, MinCorr: 0.92, Make: func(pix []byte, rng *rand.Rand) []byte {
			var b bytes.Buffer
			m := Paint{Paper: Black, Ink: White}.RGBA(InkMap(pix, 112), 112, 112, rng)
			if err := tiff.Encode(&b, m, &tiff.Options{Compression: tiff.Deflate}); err != nil {
				panic(err)
			}
			return b.Bytes()
		}},
	}
}

// Canvas is an HTML canvas drawing as toDataURL saves it: the stroke colour where there is ink, alpha the ink
// coverage, and a fully transparent background whose colour channels are those of stroke (0 alpha).
func Canvas(ink []float64, size int, stroke color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, size, size))
	for i, a := range ink {
		c := stroke
		c.A = uint8(math.Round(a * 255))
		if c.A == 0 {
			c = color.NRGBA{}
		}
		m.SetNRGBA(i%size, i/size, c)
	}
	return m
}

// TurnAnticlockwise turns a w x h map a quarter turn anticlockwise, into h x w.
func TurnAnticlockwise(v []float64, w, h int) []float64 {
	out := make([]float64, len(v))
	for y := range h {
		for x := range w {
			// (x, y) lands in column y of row w-1-x of the h-wide result.
			out[(w-1-x)*h+y] = v[y*w+x]
		}
	}
	return out
}

// WithOrientation inserts an EXIF block with Orientation o right after a JPEG's SOI marker, as a camera writes it,
// in big-endian (Motorola) or little-endian (Intel) byte order.
func WithOrientation(jpg []byte, o uint16, littleEndian bool) []byte {
	var bo binary.ByteOrder = binary.BigEndian
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	if littleEndian {
		bo = binary.LittleEndian
		tiff = []byte("II\x2a\x00\x08\x00\x00\x00")
	}
	// One IFD: two entries (a harmless XResolution-like tag first, then Orientation), no next IFD.
	ifd := make([]byte, 2+2*12+4)
	bo.PutUint16(ifd, 2)
	bo.PutUint16(ifd[2:], 0x010e)  // ImageDescription, ASCII
	bo.PutUint16(ifd[4:], 2)       // ASCII
	bo.PutUint32(ifd[6:], 4)       // count
	copy(ifd[10:], "pic\x00")      // fits in the value field
	bo.PutUint16(ifd[14:], 0x0112) // Orientation
	bo.PutUint16(ifd[16:], 3)      // SHORT
	bo.PutUint32(ifd[18:], 1)      // count
	bo.PutUint16(ifd[22:], o)      // value, left-justified
	payload := append(append([]byte("Exif\x00\x00"), tiff...), ifd...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(payload)))
	out := append([]byte{}, jpg[:2]...)
	out = append(append(out, seg...), payload...)
	return append(out, jpg[2:]...)
}

// Rule draws the outline of the box [x0, x1) x [y0, y1), t pixels thick, in full ink on the w x h ink map: a frame
// around a scan, a form field's box, or (with a box reaching past the page) a ruled line.
func Rule(ink []float64, w, h, x0, y0, x1, y1, t int) []float64 {
	for y := max(y0, 0); y < min(y1, h); y++ {
		for x := max(x0, 0); x < min(x1, w); x++ {
			if x < x0+t || x >= x1-t || y < y0+t || y >= y1-t {
				ink[y*w+x] = 1
			}
		}
	}
	return ink
}

// Thin narrows the strokes of a size x size ink map by r pixels on every side (a square minimum filter), as a fine
// pen would draw them.
func Thin(ink []float64, size, r int) []float64 {
	neg := make([]float64, len(ink))
	for i, v := range ink {
		neg[i] = 1 - v
	}
	out := Bold(neg, size, r)
	for i, v := range out {
		out[i] = 1 - v
	}
	return out
}

// Bold thickens the strokes of a size x size ink map by r pixels on every side (a square maximum filter), as a
// marker would draw them.
func Bold(ink []float64, size, r int) []float64 {
	return maxFilter(maxFilter(ink, size, r, 1, size), size, r, size, 1) // along rows, then along columns
}

// maxFilter takes the maximum over r pixels either side, along lines of a size x size map whose pixels are step
// apart and whose lines start next apart.
func maxFilter(v []float64, size, r, step, next int) []float64 {
	out := make([]float64, len(v))
	for line := range size {
		for i := range size {
			m := 0.0
			for k := max(0, i-r); k <= min(size-1, i+r); k++ {
				m = max(m, v[line*next+k*step])
			}
			out[line*next+i*step] = m
		}
	}
	return out
}
