package imageprep

import (
	"errors"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// TestDecodeHostile feeds Decode inputs that are wrong, lying or built to exhaust a server, and checks that each
// gets the right error, quickly, without allocating what the input claims.
func TestDecodeHostile(t *testing.T) {
	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 0 // no format's magic number starts with a zero byte

	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"zero bytes are undecodable", nil, Limits{}, ErrUndecodable},
		{"random bytes are unsupported", random, Limits{}, ErrUnsupported},
		{"text is unsupported", []byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), Limits{}, ErrUnsupported},
		{"data beyond MaxBytes is too large", random, Limits{MaxBytes: 1000}, ErrTooLarge},
		{"a PNG claiming 100000x100000 is too large", uploadtest.PNGHeader(100000, 100000), Limits{}, ErrTooLarge},
		{"a PNG claiming 2^31-1 squared is too large", uploadtest.PNGHeader(1<<31-1, 1<<31-1), Limits{}, ErrTooLarge},
		{"a PNG just over MaxPixels is too large", uploadtest.PNGHeader(101, 100), Limits{MaxPixels: 10000}, ErrTooLarge},
		{"a PNG claiming 0x0 is undecodable", uploadtest.PNGHeader(0, 0), Limits{}, ErrUndecodable},
		{"a PNG with a header but no pixels is undecodable", uploadtest.PNGHeader(10, 10), Limits{}, ErrUndecodable},
		{"a GIF with a 65535x65535 screen is too large", uploadtest.GIFScreen(65535, 65535), Limits{}, ErrTooLarge},
		{"a TIFF claiming 1000000x1000000 is too large", uploadtest.TIFFHeader(1000000, 1000000, 1), Limits{}, ErrTooLarge},
		{"a TIFF whose strip claims 4 GB is undecodable", uploadtest.TIFFHeader(16, 16, 1<<32-1), Limits{}, ErrUndecodable},
		{"a BMP claiming 100000x100000 is too large", uploadtest.BMPHeader(100000, 100000), Limits{}, ErrTooLarge},
		{"a BMP claiming 100000x-100000 (top-down) is too large", uploadtest.BMPHeader(100000, -100000), Limits{}, ErrTooLarge},
		{"a JPEG claiming 65535x65535 is too large", uploadtest.JPEGHeader(65535, 65535), Limits{}, ErrTooLarge},
		{"a JPEG of 5000 empty scans is undecodable", uploadtest.ManyScans(), Limits{}, ErrUndecodable},
		{"a WebP claiming a 16384x16384 canvas is too large", uploadtest.WebPCanvas(16384, 16384), Limits{}, ErrTooLarge},
		{"the first frame of a GIF of 2000 frames decodes", uploadtest.ManyFrames(2000), Limits{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, _, err := Decode(tc.data, tc.lim)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got error %v; want %v", err, tc.want)
			}
			if elapsed > time.Second {
				t.Errorf("took %v; want well under a second", elapsed)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("allocated %d bytes; want under 8 MiB", alloc)
			}
		})
	}
}

// TestDecodeTruncated cuts every seed image short at many lengths: each must fail with ErrUndecodable (never
// ErrUnsupported, since its format is still recognisable, and never a panic), unless the bytes cut off were ones the
// decoder does not read (a GIF's later frames, a TIFF's trailing resolution fields, padding) and it decodes to the
// same image.
func TestDecodeTruncated(t *testing.T) {
	for _, name := range seedFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		whole, _, err := Decode(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			for n := 1; n < len(data); n += max(1, len(data)/97) {
				img, _, err := Decode(data[:n], Limits{})
				if err == nil && sameImage(img, whole) {
					continue
				}
				if !errors.Is(err, ErrUndecodable) {
					t.Errorf("cut to %d of %d bytes: got %v; want ErrUndecodable", n, len(data), err)
				}
			}
		})
	}
}

func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.NRGBA64Model.Convert(a.At(x, y)) != color.NRGBA64Model.Convert(b.At(x, y)) {
				return false
			}
		}
	}
	return true
}

// TestDecodeFormats checks that every format is recognised and named.
func TestDecodeFormats(t *testing.T) {
	for _, tc := range []struct{ file, format string }{
		{"digit.png", "png"}, {"digit.jpg", "jpeg"}, {"digit.gif", "gif"}, {"digit.bmp", "bmp"},
		{"digit.tiff", "tiff"}, {"lossless.webp", "webp"}, {"lossy.webp", "webp"},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := Decode(data, Limits{})
		if err != nil || format != tc.format || img.Bounds().Empty() {
			t.Errorf("%s: got format %q, error %v; want %q and an image", tc.file, format, err, tc.format)
		}
	}
}

// TestGuard checks the last line of defence: a decoder's panic becomes ErrUndecodable.
func TestGuard(t *testing.T) {
	err := guard(func() error { panic("boom") })
	if err == nil {
		t.Fatal("got no error from a panicking decoder")
	}
	if err := decodeErr("png", err); !errors.Is(err, ErrUndecodable) {
		t.Errorf("got %v; want ErrUndecodable", err)
	}
}
