package imageprep

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"runtime"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// allocated returns the bytes f allocates, garbage included: an upper bound on what it holds at its peak.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The estimate is at least what the decoder really allocates, for the formats and colour models that cost the most
// per pixel, and not wildly more (which would refuse images that fit).
func TestEstimateCostCoversWhatTheDecoderAllocates(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 700, 500))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i)
	}
	rgba := image.NewRGBA(image.Rect(0, 0, 700, 500))
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(i * 7)
	}
	in := Spec{Width: 28, Height: 28, Mode: ModeMNIST}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"progressive CMYK JPEG", uploadtest.ProgressiveJPEG(1000, 700, 4)},
		{"progressive YCbCr JPEG", uploadtest.ProgressiveJPEG(1000, 700, 3)},
		{"progressive gray JPEG", uploadtest.ProgressiveJPEG(1000, 700, 1)},
		{"baseline JPEG", uploadtest.EncodeJPEG(rgba, 90)},
		{"16-bit RGBA PNG", uploadtest.PNG16(600, 500)},
		{"8-bit gray PNG", uploadtest.EncodePNG(gray)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cost, err := EstimateCost(c.data, Limits{}, in)
			if err != nil {
				t.Fatal(err)
			}
			var img image.Image
			got := allocated(func() { img, _, err = Decode(c.data, Limits{}) })
			if err != nil {
				t.Fatal(err)
			}
			if got > uint64(cost.Decode) {
				t.Fatalf("decoding a %T allocated %d bytes; the estimate is %d", img, got, cost.Decode)
			}
			if px := int64(cost.Width * cost.Height); cost.Decode > 40*px+1<<20 {
				t.Fatalf("estimate %d bytes for %d pixels; want at most 40 a pixel", cost.Decode, px)
			}
			dst := make([]float32, 28*28)
			// The test images are flat, so preparing them finds no digit: that is an answer, not a failure.
			got = allocated(func() { err = (&Preparer{}).Prepare(dst, img, in) })
			if errors.Is(err, ErrNoDigit) {
				err = nil
			}
			if err != nil || got > uint64(cost.Prepare) {
				// A CMYK image is read through At, one small allocation a pixel of garbage; it is not held.
				if _, cmyk := img.(*image.CMYK); !cmyk {
					t.Fatalf("preparing allocated %d bytes (%v); the estimate is %d", got, err, cost.Prepare)
				}
			}
		})
	}
}

// A 313 KB, 6324x6324 progressive CMYK JPEG is valid and costs about 24 bytes a pixel to decode, about 0.9 GiB: a
// small upload that would exhaust a small pod. The estimate knows that from the header alone.
func TestEstimateCostOfAFortyMegapixelCMYKJPEG(t *testing.T) {
	data := uploadtest.ProgressiveJPEG(6324, 6324, 4)
	if len(data) > 320<<10 {
		t.Fatalf("the file is %d bytes; want about 313 KB", len(data))
	}
	cost, err := EstimateCost(data, Limits{MaxPixels: 40_000_000}, Spec{Width: 28, Height: 28, Mode: ModeMNIST})
	if err != nil {
		t.Fatal(err)
	}
	if cost.Decode < 24*6324*6324 {
		t.Fatalf("estimate %d bytes; want at least 24 a pixel (%d)", cost.Decode, 24*6324*6324)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.ColorModel != color.CMYKModel {
		t.Fatalf("DecodeConfig: %v, %v; want a CMYK image", cfg.ColorModel, err)
	}
}

// A small PNG is costed from its IHDR alone; that figure covers what its header read in full would say and what
// the decoder really allocates, for every colour model, and a broken small PNG still fails to decode.
func TestEstimateCostOfSmallPNGs(t *testing.T) {
	in := Spec{Width: 28, Height: 28, Mode: ModeMNIST}
	pal := image.NewPaletted(image.Rect(0, 0, 64, 64), color.Palette{color.Black, color.White})
	gray := image.NewGray(image.Rect(0, 0, 28, 28))
	interlaced := uploadtest.EncodePNG(gray)
	interlaced[8+8+12] = 1 // the IHDR's interlace byte; the CRC is then wrong, so this one takes the general path
	for _, c := range []struct {
		name  string
		data  []byte
		small bool
	}{
		{"16-bit RGBA 64x64", uploadtest.PNG16(64, 64), true},
		{"paletted 64x64", uploadtest.EncodePNG(pal), true},
		{"gray 28x28", uploadtest.EncodePNG(gray), true},
		{"16-bit RGBA 65x64", uploadtest.PNG16(65, 64), false},
		{"bad IHDR CRC", interlaced, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			small, ok := smallPNGCost(c.data, Limits{}, in)
			if ok != c.small {
				t.Fatalf("smallPNGCost ok = %v, want %v", ok, c.small)
			}
			full, fullErr := estimateCost(c.data, Limits{}, in)
			got, err := EstimateCost(c.data, Limits{}, in)
			if !ok {
				if got != full || !errors.Is(err, fullErr) && err.Error() != fullErr.Error() {
					t.Fatalf("EstimateCost = %+v, %v; the general path says %+v, %v", got, err, full, fullErr)
				}
				return
			}
			if fullErr != nil {
				t.Fatal(fullErr)
			}
			if small.Width != full.Width || small.Height != full.Height || small.Format != full.Format ||
				small.Decode < full.Decode || small.Prepare != full.Prepare {
				t.Fatalf("small %+v does not cover the full figure %+v", small, full)
			}
			if a := allocated(func() { _, _, err = Decode(c.data, Limits{}) }); err != nil || a > uint64(small.Decode) {
				t.Fatalf("decoding allocated %d bytes (%v); the estimate is %d", a, err, small.Decode)
			}
		})
	}
	// A small PNG whose header is sound but whose data is not: the estimate does not look, decoding says so.
	broken := uploadtest.EncodePNG(gray)
	broken = append(broken[:40:40], broken[len(broken)-12:]...)
	if _, err := EstimateCost(broken, Limits{}, in); err != nil {
		t.Fatalf("EstimateCost: %v", err)
	}
	if _, err := PrepareBytes(make([]float32, 28*28), broken, Limits{}, in); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("PrepareBytes of a broken small PNG: %v, want ErrUndecodable", err)
	}
}
