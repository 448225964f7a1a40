package imageprep

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
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
		for _, img := range []image.Image{gray, opaque, trans, image.NewUniform(color.Black)} {
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
	png.Encode(&pal, image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White}))
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
