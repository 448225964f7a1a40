package imageprep

import (
	"fmt"
	"image"
	"math"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// TestOrientTurnsAsEXIFSays checks every orientation on a 3x2 image whose pixels are all different, against the
// pictures of the EXIF specification written out by hand, for a gray image, a YCbCr one and a sub-image.
func TestOrientTurnsAsEXIFSays(t *testing.T) {
	want := map[int][]string{ // rows of the result
		1: {"1 2 3", "4 5 6"},
		2: {"3 2 1", "6 5 4"},
		3: {"6 5 4", "3 2 1"},
		4: {"4 5 6", "1 2 3"},
		5: {"1 4", "2 5", "3 6"},
		6: {"4 1", "5 2", "6 3"},
		7: {"6 3", "5 2", "4 1"},
		8: {"3 6", "2 5", "1 4"},
	}
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(gray.Pix, []byte{1, 2, 3, 4, 5, 6})
	ycc := image.NewYCbCr(image.Rect(0, 0, 3, 2), image.YCbCrSubsampleRatio420)
	copy(ycc.Y[0:3], []byte{1, 2, 3})
	copy(ycc.Y[ycc.YStride:], []byte{4, 5, 6})
	for i := range ycc.Cb { // neutral chroma: At then reads the Y plane back unchanged
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	big := image.NewGray(image.Rect(0, 0, 5, 4))
	for y := range 2 {
		copy(big.Pix[(y+1)*big.Stride+1:], gray.Pix[y*3:][:3])
	}
	sub := big.SubImage(image.Rect(1, 1, 4, 3))
	cmyk := image.NewCMYK(image.Rect(0, 0, 3, 2)) // only black ink: gray is 255 less the K channel
	for i, v := range gray.Pix {
		cmyk.Pix[4*i+3] = 255 - v
	}
	for name, img := range map[string]image.Image{"gray": gray, "ycbcr": ycc, "sub-image": sub, "cmyk": cmyk} {
		for o := 1; o <= 8; o++ {
			got := orient(img, o)
			b := got.Bounds()
			var rows []string
			for y := b.Min.Y; y < b.Max.Y; y++ {
				row := ""
				for x := b.Min.X; x < b.Max.X; x++ {
					if x > b.Min.X {
						row += " "
					}
					r, _, _, _ := got.At(x, y).RGBA()
					row += fmt.Sprint(r >> 8)
				}
				rows = append(rows, row)
			}
			if fmt.Sprint(rows) != fmt.Sprint(want[o]) {
				t.Errorf("%s, orientation %d: %q; want %q", name, o, rows, want[o])
			}
		}
	}
}

// TestDecodeTurnsJPEGsUpright stores an MNIST digit turned each way with the orientation that undoes the turn, in
// both byte orders, and checks that Decode gives back the upright digit.
func TestDecodeTurnsJPEGsUpright(t *testing.T) {
	upright := uploadtest.DigitGray(mnistDigit(t, 0))
	undo := map[int]int{6: 8, 8: 6} // 2, 3, 4, 5 and 7 are their own inverses
	for o := 1; o <= 8; o++ {
		for _, little := range []bool{false, true} {
			stored := upright
			if u, ok := undo[o]; ok {
				stored = orient(upright, u).(*image.Gray)
			} else if o > 1 {
				stored = orient(upright, o).(*image.Gray)
			}
			data := uploadtest.WithOrientation(uploadtest.EncodeJPEG(stored, 100), uint16(o), little)
			if got := jpegOrientation(data); got != o {
				t.Fatalf("orientation %d (little-endian %v) read as %d", o, little, got)
			}
			img, _, err := Decode(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds().Dx() != 28 || img.Bounds().Dy() != 28 {
				t.Fatalf("orientation %d: %v", o, img.Bounds())
			}
			var diff float64
			for y := range 28 {
				for x := range 28 {
					r, _, _, _ := img.At(x, y).RGBA()
					diff += math.Abs(float64(r>>8) - float64(upright.GrayAt(x, y).Y))
				}
			}
			if mad := diff / (28 * 28); mad > 3 {
				t.Errorf("orientation %d (little-endian %v): mean difference %.1f levels from the upright digit", o, little, mad)
			}
		}
	}
}

// TestJPEGOrientationIgnoresWhatItCannotRead cuts a tagged JPEG's header everywhere and spoils its fields one by
// one: no cut or spoilt header may panic, and none may give an orientation outside 1..8.
func TestJPEGOrientationIgnoresWhatItCannotRead(t *testing.T) {
	data := uploadtest.WithOrientation(uploadtest.EncodeJPEG(uploadtest.DigitGray(mnistDigit(t, 0)), 90), 6, false)
	for n := range 80 {
		if o := jpegOrientation(data[:n]); o < 1 || o > 8 {
			t.Fatalf("%d bytes: orientation %d", n, o)
		}
	}
	for i := 2; i < 60; i++ {
		for _, v := range []byte{0, 0xff, 0x7f} {
			spoilt := append([]byte{}, data...)
			spoilt[i] = v
			if o := jpegOrientation(spoilt); o < 1 || o > 8 {
				t.Fatalf("byte %d = %#x: orientation %d", i, v, o)
			}
		}
	}
	if o := jpegOrientation(uploadtest.WithOrientation(uploadtest.EncodeJPEG(uploadtest.DigitGray(mnistDigit(t, 0)), 90), 9, true)); o != 1 {
		t.Errorf("orientation 9 read as %d; want 1", o)
	}
}

// mnistDigit returns the pixels of MNIST test digit i.
func mnistDigit(t testing.TB, i int) []byte {
	s := mnistTest(t)
	n := s.Features()
	return append([]byte{}, s.X[i*n:(i+1)*n]...)
}
