package imageprep

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

func TestResizeColourOfAGrayImageIsThreeGrayPlanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range [][2]int{{28, 28}, {100, 37}, {9, 200}, {5, 5}} {
		g := image.NewGray(image.Rect(0, 0, size[0], size[1]))
		for i := range g.Pix {
			g.Pix[i] = uint8(rng.IntN(256))
		}
		for _, img := range []image.Image{g, toRGBA(g)} {
			gray := make([]float32, 16*16)
			if err := Prepare(gray, img, Spec{Width: 16, Height: 16, Mode: ModeResize}); err != nil {
				t.Fatal(err)
			}
			col := make([]float32, 3*16*16)
			if err := Prepare(col, img, Spec{Width: 16, Height: 16, Mode: ModeResize, Channels: 3}); err != nil {
				t.Fatal(err)
			}
			for c := range 3 {
				for i, v := range gray {
					if d := math.Abs(float64(col[c*256+i] - v)); d > 1e-5 {
						t.Fatalf("%T %dx%d: channel %d value %d is %v; want the gray value %v", img, size[0], size[1], c, i, col[c*256+i], v)
					}
				}
			}
		}
	}
}

func toRGBA(src image.Image) *image.RGBA {
	m := image.NewRGBA(src.Bounds())
	for y := src.Bounds().Min.Y; y < src.Bounds().Max.Y; y++ {
		for x := src.Bounds().Min.X; x < src.Bounds().Max.X; x++ {
			m.Set(x, y, src.At(x, y))
		}
	}
	return m
}

func TestResizeColourIsChannelPlanar(t *testing.T) {
	// Left half pure red, right half pure blue, the top-right quarter transparent: as in luminance, transparency
	// counts as black.
	m := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			c := color.NRGBA{R: 255, A: 255}
			if x >= 20 {
				c = color.NRGBA{B: 255, A: 255}
				if y < 20 {
					c.A = 0
				}
			}
			m.SetNRGBA(x, y, c)
		}
	}
	v := make([]float32, 3*4*4)
	if err := Prepare(v, m, Spec{Width: 4, Height: 4, Mode: ModeResize, Channels: 3}); err != nil {
		t.Fatal(err)
	}
	for y := range 4 {
		for x := range 4 {
			want := [3]float32{1, 0, 0}
			if x >= 2 {
				want = [3]float32{0, 0, 1}
				if y < 2 {
					want = [3]float32{}
				}
			}
			for c := range 3 {
				if got := v[c*16+y*4+x]; math.Abs(float64(got-want[c])) > 1e-6 {
					t.Errorf("channel %d at (%d,%d) is %v; want %v", c, x, y, got, want[c])
				}
			}
		}
	}
}

func TestResizeColourOfAJPEGMatchesItsRGB(t *testing.T) {
	ycc := image.NewYCbCr(image.Rect(0, 0, 32, 32), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = uint8(i * 7)
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(i*3), uint8(255-i*5)
	}
	a := make([]float32, 3*8*8)
	b := make([]float32, 3*8*8)
	if err := Prepare(a, ycc, Spec{Width: 8, Height: 8, Mode: ModeResize, Channels: 3}); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(b, toRGBA(ycc), Spec{Width: 8, Height: 8, Mode: ModeResize, Channels: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			t.Fatalf("value %d: %v from the YCbCr image, %v from its RGBA copy", i, a[i], b[i])
		}
	}
}

func TestPrepareRefusesColourItCannotMake(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for _, tc := range []struct {
		name string
		spec Spec
		n    int
	}{
		{"colour in the mnist mode", Spec{Width: 28, Height: 28, Mode: ModeMNIST, Channels: 3}, 3 * 784},
		{"two channels", Spec{Width: 28, Height: 28, Mode: ModeResize, Channels: 2}, 2 * 784},
		{"a gray-sized vector for colour", Spec{Width: 28, Height: 28, Mode: ModeResize, Channels: 3}, 784},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Prepare(make([]float32, tc.n), img, tc.spec); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}

func TestColourCostsMoreToPrepare(t *testing.T) {
	gray := prepareCost(640, 480, Spec{Width: 28, Height: 28, Mode: ModeResize})
	colour := prepareCost(640, 480, Spec{Width: 28, Height: 28, Mode: ModeResize, Channels: 3})
	// The image is reduced by 17, the smaller of 640/28 and 480/28, to 38x29 working pixels of 36 more bytes each.
	if want := gray + 36*38*29; colour != want {
		t.Errorf("colour costs %d, gray %d; want %d", colour, gray, want)
	}
}
