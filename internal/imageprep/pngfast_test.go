package imageprep

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"slices"
	"testing"
)

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	switch a := a.(type) {
	case *image.Gray:
		b, ok := b.(*image.Gray)
		return ok && bytes.Equal(a.Pix, b.Pix)
	case *image.RGBA:
		b, ok := b.(*image.RGBA)
		return ok && bytes.Equal(a.Pix, b.Pix)
	case *image.NRGBA:
		b, ok := b.(*image.NRGBA)
		return ok && bytes.Equal(a.Pix, b.Pix)
	case *image.Paletted:
		b, ok := b.(*image.Paletted)
		return ok && bytes.Equal(a.Pix, b.Pix) && slices.Equal(a.Palette, b.Palette)
	}
	return false
}

// TestFastPNGMatchesTheStandardDecoder decodes PNGs of every handled colour type, sizes and compression levels with
// both decoders: where the fast one answers, it must give exactly image/png's image type and pixels.
func TestFastPNGMatchesTheStandardDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var d pngDecoder
	handled := 0
	for _, size := range [][2]int{{1, 1}, {28, 28}, {7, 13}, {64, 3}, {280, 280}} {
		w, h := size[0], size[1]
		gray := image.NewGray(image.Rect(0, 0, w, h))
		opaque := image.NewRGBA(image.Rect(0, 0, w, h))
		trans := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range gray.Pix {
			// Smooth structure plus noise, so the encoder picks a mix of filters.
			gray.Pix[i] = byte(i%w*3 + rng.IntN(20))
		}
		for i := range opaque.Pix {
			opaque.Pix[i] = byte(rng.IntN(256))
			if i%4 == 3 {
				opaque.Pix[i] = 255
			}
		}
		for i := range trans.Pix {
			trans.Pix[i] = byte(i/4%w*5 + rng.IntN(10))
		}
		// Paletted: a gray ramp; a few colours with transparent ones (a tRNS chunk); and indexes past the end of a
		// short palette, which image/png reads as opaque black.
		ramp := image.NewPaletted(gray.Rect, nil)
		for i := range 256 {
			ramp.Palette = append(ramp.Palette, color.Gray{uint8(i)})
		}
		copy(ramp.Pix, gray.Pix)
		alpha := image.NewPaletted(gray.Rect, color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{255, 255, 255, 255}, color.NRGBA{10, 200, 30, 128}, color.RGBA{1, 2, 3, 255}})
		short := image.NewPaletted(gray.Rect, nil)
		for i := range 20 { // over 16 entries, so the encoder writes 8 bits per pixel
			alpha.Palette = append(alpha.Palette, color.Gray{uint8(10 * i)})
			short.Palette = append(short.Palette, color.Gray{uint8(i)})
		}
		for i := range alpha.Pix {
			alpha.Pix[i] = byte(rng.IntN(24))
			short.Pix[i] = byte(rng.IntN(30))
		}
		for _, img := range []image.Image{gray, opaque, trans, ramp, alpha, short, image.NewUniform(color.Black)} {
			if _, ok := img.(*image.Uniform); ok {
				continue
			}
			for _, level := range []png.CompressionLevel{png.DefaultCompression, png.NoCompression, png.BestSpeed, png.BestCompression} {
				var buf bytes.Buffer
				if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, img); err != nil {
					t.Fatal(err)
				}
				want, err := png.Decode(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				got, ok := d.decode(buf.Bytes(), 1<<24)
				if !ok {
					t.Errorf("%T %dx%d level %d: the fast decoder declined a plain 8-bit PNG", img, w, h, level)
					continue
				}
				handled++
				if !samePixels(got, want) {
					t.Errorf("%T %dx%d level %d: got %T, pixels differ from image/png's %T", img, w, h, level, got, want)
				}
			}
		}
	}
	t.Logf("%d images decoded identically", handled)
}

func TestFastPNGDeclinesWhatItDoesNotHandle(t *testing.T) {
	var d pngDecoder
	var b16, pal bytes.Buffer
	png.Encode(&b16, image.NewGray16(image.Rect(0, 0, 4, 4)))
	png.Encode(&pal, image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})) // 1-bit
	var ok28 bytes.Buffer
	png.Encode(&ok28, image.NewGray(image.Rect(0, 0, 28, 28)))
	good := ok28.Bytes()
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-20] ^= 0xff
	for name, data := range map[string][]byte{
		"16-bit": b16.Bytes(), "paletted": pal.Bytes(), "truncated": good[:len(good)-15], "corrupt": corrupt,
		"not a PNG": []byte("hello"), "over the pixel limit": good,
	} {
		limit := 1 << 24
		if name == "over the pixel limit" {
			limit = 100
		}
		if _, ok := d.decode(data, limit); ok {
			t.Errorf("%s: the fast decoder accepted it", name)
		}
	}
}

func FuzzFastPNG(f *testing.F) {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 5, 3)))
	f.Add(buf.Bytes())
	buf.Reset()
	png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 3, 2)))
	f.Add(buf.Bytes())
	buf.Reset()
	pal := image.NewPaletted(image.Rect(0, 0, 4, 3), nil)
	for i := range 20 {
		pal.Palette = append(pal.Palette, color.NRGBA{uint8(i), 0, 0, uint8(200 + i)})
	}
	png.Encode(&buf, pal)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		var d pngDecoder
		got, ok := d.decode(data, 1<<16)
		if !ok {
			return
		}
		want, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("fast decoder accepted what image/png refuses (%v)", err)
		}
		if !samePixels(got, want) {
			t.Fatalf("pixels differ from image/png's")
		}
	})
}

// unfilterRef is PNG's unfiltering as the specification writes it, each neighbour looked up with its bounds.
func unfilterRef(filter byte, cur, prev []byte, bpp int) bool {
	if filter > 4 {
		return false // an unknown filter, even on an empty line
	}
	at := func(s []byte, i int) int {
		if i < 0 || i >= len(s) {
			return 0
		}
		return int(s[i])
	}
	for i := range cur {
		a, b, c := at(cur, i-bpp), at(prev, i), at(prev, i-bpp)
		switch filter {
		case 0:
		case 1:
			cur[i] += byte(a)
		case 2:
			cur[i] += byte(b)
		case 3:
			cur[i] += byte((a + b) / 2)
		case 4:
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += byte(a)
			case pb <= pc:
				cur[i] += byte(b)
			default:
				cur[i] += byte(c)
			}
		}
	}
	return true
}

func TestUnfilterMatchesTheSpecification(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 5000 {
		bpp := 1 + rng.IntN(4)
		n := rng.IntN(40)
		filter := byte(rng.IntN(6))
		cur := make([]byte, n)
		var prev []byte
		if trial%3 != 0 {
			prev = make([]byte, n)
		}
		for i := range cur {
			cur[i] = byte(rng.IntN(256))
		}
		for i := range prev {
			prev[i] = byte(rng.IntN(256))
		}
		want := slices.Clone(cur)
		okWant := unfilterRef(filter, want, prev, bpp)
		// Into another line, and in place.
		dst := make([]byte, n)
		if ok := unfilter(filter, dst, cur, prev, bpp); ok != okWant || ok && !bytes.Equal(dst, want) {
			t.Fatalf("filter %d, bpp %d, %d bytes, prev %v: got %v %v, want %v %v", filter, bpp, n, prev != nil, ok, dst, okWant, want)
		}
		ok := unfilter(filter, cur, cur, prev, bpp)
		if ok != okWant || ok && !bytes.Equal(cur, want) {
			t.Fatalf("filter %d, bpp %d, %d bytes, prev %v, in place: got %v %v, want %v %v", filter, bpp, n, prev != nil, ok, cur, okWant, want)
		}
	}
}

// TestPaethMatchesTheSpecification runs unfilter's Paeth on every left, upper and upper-left byte: for each upper
// b and upper-left c, a line of 256 pairs whose upper line alternates c and b, the first byte of each pair made to
// unfilter to a, the second to what Paeth predicts from a, b and c.
func TestPaethMatchesTheSpecification(t *testing.T) {
	ref := func(a, b, c int) int {
		p := a + b - c
		pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
		switch {
		case pa <= pb && pa <= pc:
			return a
		case pb <= pc:
			return b
		}
		return c
	}
	cur, prev, dst := make([]byte, 512), make([]byte, 512), make([]byte, 512)
	for b := range 256 {
		for c := range 256 {
			left := 0 // the byte before each pair, and its upper neighbour
			for a := range 256 {
				prev[2*a], prev[2*a+1] = byte(c), byte(b)
				upLeft := 0
				if a > 0 {
					upLeft = b
				}
				cur[2*a] = byte(a - ref(left, c, upLeft))
				cur[2*a+1] = 0
				left = ref(a, b, c)
			}
			if !unfilter(4, dst, cur, prev, 1) {
				t.Fatal("Paeth refused")
			}
			for a := range 256 {
				if dst[2*a] != byte(a) {
					t.Fatalf("b %d c %d: the left byte is %d, want %d", b, c, dst[2*a], a)
				}
				if got, want := int(dst[2*a+1]), ref(a, b, c); got != want {
					t.Fatalf("Paeth of a %d, b %d, c %d is %d, want %d", a, b, c, got, want)
				}
			}
		}
	}
}
