package imageprep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// pngChunk returns one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// pngHeader is a PNG signature and a valid IHDR claiming w x h 8-bit RGBA pixels, followed by an empty IDAT and IEND.
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, pngChunk("IEND", nil)...)
}

// gifScreen is a GIF whose logical screen is w x h, with one 1x1 frame.
func gifScreen(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0x80, 0, 0, 0, 0, 0, 255, 255, 255) // global colour table of 2 entries
	b = append(b, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0)    // image descriptor, 1x1 at (0, 0)
	b = append(b, 2, 2, 0x44, 0x01, 0)                // LZW minimum code size 2, one data block
	return append(b, 0x3b)
}

// tiffHeader is a little-endian TIFF whose one IFD claims w x h 8-bit gray pixels in a single strip of count bytes.
func tiffHeader(w, h, count uint32) []byte {
	type entry struct {
		tag, typ uint16
		val      uint32
	}
	entries := []entry{
		{256, 4, w},     // ImageWidth
		{257, 4, h},     // ImageLength
		{258, 3, 8},     // BitsPerSample
		{259, 3, 1},     // Compression: none
		{262, 3, 1},     // PhotometricInterpretation: BlackIsZero
		{273, 4, 8},     // StripOffsets
		{277, 3, 1},     // SamplesPerPixel
		{278, 4, h},     // RowsPerStrip
		{279, 4, count}, // StripByteCounts
	}
	b := []byte("II*\x00")
	b = binary.LittleEndian.AppendUint32(b, 8)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.typ)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, e.val)
	}
	return binary.LittleEndian.AppendUint32(b, 0)
}

// bmpHeader is a 24-bit BMP header claiming w x h pixels and no pixel data.
func bmpHeader(w, h int32) []byte {
	b := []byte("BM")
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 40)
	b = binary.LittleEndian.AppendUint32(b, uint32(w))
	b = binary.LittleEndian.AppendUint32(b, uint32(h))
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 24)
	return append(b, make([]byte, 24)...)
}

// jpegSOF is a JPEG start, a JFIF marker and a baseline frame header claiming w x h gray pixels.
func jpegSOF(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	b = append(b, 0xff, 0xc0, 0, 11, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	return append(b, 1, 1, 0x11, 0, 0xff, 0xd9)
}

// webpCanvas is a WebP VP8X header claiming a w x h canvas.
func webpCanvas(w, h uint32) []byte {
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, 4+8+10)
	b = append(b, "WEBPVP8X"...)
	b = binary.LittleEndian.AppendUint32(b, 10)
	b = append(b, 0, 0, 0, 0)
	b = append(b, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	return append(b, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
}

// manyScans is a JPEG made of a header and thousands of empty start-of-scan markers.
func manyScans() []byte {
	b := jpegSOF(4000, 4000)
	b = b[:len(b)-2]
	for range 5000 {
		b = append(b, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0)
	}
	return append(b, 0xff, 0xd9)
}

// manyFrames is a small GIF of n frames, of which Decode must read only the first.
func manyFrames(n int) []byte {
	g := &gif.GIF{}
	pal := color.Palette{color.Black, color.White}
	for range n {
		g.Image = append(g.Image, image.NewPaletted(image.Rect(0, 0, 16, 16), pal))
		g.Delay = append(g.Delay, 0)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		panic(err)
	}
	return b.Bytes()
}

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
		{"a PNG claiming 100000x100000 is too large", pngHeader(100000, 100000), Limits{}, ErrTooLarge},
		{"a PNG claiming 2^31-1 squared is too large", pngHeader(1<<31-1, 1<<31-1), Limits{}, ErrTooLarge},
		{"a PNG just over MaxPixels is too large", pngHeader(101, 100), Limits{MaxPixels: 10000}, ErrTooLarge},
		{"a PNG claiming 0x0 is undecodable", pngHeader(0, 0), Limits{}, ErrUndecodable},
		{"a PNG with a header but no pixels is undecodable", pngHeader(10, 10), Limits{}, ErrUndecodable},
		{"a GIF with a 65535x65535 screen is too large", gifScreen(65535, 65535), Limits{}, ErrTooLarge},
		{"a TIFF claiming 1000000x1000000 is too large", tiffHeader(1000000, 1000000, 1), Limits{}, ErrTooLarge},
		{"a TIFF whose strip claims 4 GB is undecodable", tiffHeader(16, 16, 1<<32-1), Limits{}, ErrUndecodable},
		{"a BMP claiming 100000x100000 is too large", bmpHeader(100000, 100000), Limits{}, ErrTooLarge},
		{"a BMP claiming 100000x-100000 (top-down) is too large", bmpHeader(100000, -100000), Limits{}, ErrTooLarge},
		{"a JPEG claiming 65535x65535 is too large", jpegSOF(65535, 65535), Limits{}, ErrTooLarge},
		{"a JPEG of 5000 empty scans is undecodable", manyScans(), Limits{}, ErrUndecodable},
		{"a WebP claiming a 16384x16384 canvas is too large", webpCanvas(16384, 16384), Limits{}, ErrTooLarge},
		{"the first frame of a GIF of 2000 frames decodes", manyFrames(2000), Limits{}, nil},
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
