package imageprep

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

var (
	digitsFlag   = flag.Int("digits", 0, "MNIST test digits per form in TestForms (0: 100, or fewer with -short or -race)")
	accuracyFlag = flag.Bool("accuracy", false, "TestForms also reports a classifier's accuracy on every form")
	modelFlag    = flag.String("model", "", "model file for -accuracy (default: the embedded model)")
)

var mnistInput = Spec{Width: 28, Height: 28, Mode: ModeMNIST}

// digitsPerForm is how many test digits TestForms tries per form: enough for stable figures in a normal run, few
// under -short or the race detector, whose slowdown is forty-fold.
func digitsPerForm(large bool) int {
	n := 100
	switch {
	case *digitsFlag > 0:
		n = *digitsFlag
	case raceEnabled:
		n = 6
	case testing.Short():
		n = 20
	}
	if large {
		n = max(2, n/5)
	}
	return n
}

// similarity returns the mean absolute difference and the Pearson correlation of two vectors.
func similarity(got []float32, want []byte) (mad, corr float64) {
	var sg, sw, sgg, sww, sgw float64
	n := float64(len(got))
	for i, g := range got {
		w := float64(want[i]) / 255
		mad += math.Abs(float64(g) - w)
		sg += float64(g)
		sw += w
		sgg += float64(g) * float64(g)
		sww += w * w
		sgw += float64(g) * w
	}
	cov := sgw/n - sg/n*sw/n
	vg, vw := sgg/n-sg/n*sg/n, sww/n-sw/n*sw/n
	if vg <= 0 || vw <= 0 {
		return mad / n, 0
	}
	return mad / n, cov / math.Sqrt(vg*vw)
}

// TestForms makes real MNIST test digits into every kind of upload, runs them through PrepareBytes, and checks that
// what comes out is the original digit again: MNIST's digits are already normalised the way the mnist mode
// normalises, so a perfect pipeline would give each one back. With -accuracy it also reports how often a trained
// classifier gets each form right (go test ./internal/imageprep -run TestForms -accuracy -digits 1000 -v).
func TestForms(t *testing.T) {
	set := mnistTest(t)
	net := accuracyModel(t)
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-52s %7s %8s %8s %9s\n", "form", "digits", "MAD", "corr", "accuracy")
	for i, f := range uploadtest.All() {
		t.Run(f.Name, func(t *testing.T) {
			n := digitsPerForm(f.Large)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			var p Preparer
			x := make([]float32, n*784)
			var sumMAD, sumCorr float64
			var elapsed time.Duration
			for k := range n {
				pix := set.Image(k)
				data := f.Make(pix, rng)
				start := time.Now()
				if _, err := p.PrepareBytes(x[k*784:][:784], data, Limits{}, mnistInput); err != nil {
					t.Fatalf("digit %d: %v", k, err)
				}
				elapsed += time.Since(start)
				mad, corr := similarity(x[k*784:][:784], pix)
				sumMAD += mad
				sumCorr += corr
			}
			mad, corr := sumMAD/float64(n), sumCorr/float64(n)
			acc := "-"
			if net != nil {
				probs := net.Forward(x, n, &model.Workspace[float32]{})
				right := 0
				for k := range n {
					if model.Argmax(probs[k*10:][:10]) == int(set.Y[k]) {
						right++
					}
				}
				acc = fmt.Sprintf("%.1f%%", 100*float64(right)/float64(n))
			}
			fmt.Fprintf(&table, "%-52s %7d %8.4f %8.4f %9s   (%v per image)\n", f.Name, n, mad, corr, acc, elapsed/time.Duration(n))
			if mad > f.MaxMAD {
				t.Errorf("mean absolute difference from the original digits %.4f; want at most %.4f", mad, f.MaxMAD)
			}
			if corr < f.MinCorr {
				t.Errorf("mean correlation with the original digits %.4f; want at least %.4f", corr, f.MinCorr)
			}
		})
	}
	t.Log(table.String())
}

// TestModelPreprocessingIsAMode checks that each preprocessing a model file may record names the Mode of the same
// name, since the callers convert a model's input with Mode(in.Preprocess).
func TestModelPreprocessingIsAMode(t *testing.T) {
	for _, tc := range []struct {
		recorded model.Preprocessing
		want     Mode
	}{
		{model.PreprocessMNIST, ModeMNIST},
		{model.PreprocessResize, ModeResize},
	} {
		if got := Mode(tc.recorded); got != tc.want {
			t.Errorf("model preprocessing %q converts to mode %q; want %q", tc.recorded, got, tc.want)
		}
	}
}

// accuracyModel returns the classifier for -accuracy, or nil: the embedded default model, or the file -model names.
func accuracyModel(t *testing.T) *model.Network {
	if !*accuracyFlag {
		return nil
	}
	var net *model.Network
	var err error
	if *modelFlag == "" {
		net, err = model.Default()
	} else {
		net, err = model.Load(*modelFlag)
	}
	if err != nil {
		t.Fatal(err)
	}
	if in := net.Input; (Spec{Width: in.Width, Height: in.Height, Mode: Mode(in.Preprocess)}) != mnistInput {
		t.Fatalf("model input %+v; want %+v", net.Input, mnistInput)
	}
	return net
}

// TestBlankPages checks that pages without a digit come out as zeros and ErrNoDigit, however noisy, unevenly lit or
// smoothly shaded: contrast normalisation must not blow paper texture up into strokes.
func TestBlankPages(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	empty := make([]float64, 280*280)
	gradient := func(x, y, w, h int) float64 { return 0.5 + 0.5*float64(x)/float64(w) }
	for _, tc := range []struct {
		name string
		img  image.Image
	}{
		{"a white page", uploadtest.ToGray(uploadtest.Paint{Paper: uploadtest.White}.RGBA(empty, 280, 280, rng))},
		{"a black page", uploadtest.ToGray(uploadtest.Paint{Paper: uploadtest.Black}.RGBA(empty, 280, 280, rng))},
		{"textured paper", uploadtest.Paint{Paper: uploadtest.OffWhite, Noise: 10}.RGBA(empty, 280, 280, rng)},
		{"textured paper, unevenly lit", uploadtest.Paint{Paper: uploadtest.OffWhite, Noise: 6, Light: gradient}.RGBA(empty, 280, 280, rng)},
		{"an empty canvas", uploadtest.Canvas(empty, 280, color.NRGBA{})},
		{"a single pixel", image.NewGray(image.Rect(0, 0, 1, 1))},
		{"a grey gradient, black to white", shaded(300, 200, func(x, y int) float64 { return float64(x) / 299 })},
		{"a red disc on green (ink, but no strokes)", redDisc(200)},
		{"a diagonal grey gradient", shaded(256, 256, func(x, y int) float64 { return 0.2 + 0.6*float64(x+y)/510 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, 784)
			for i := range dst {
				dst[i] = 1 // whatever the buffer held before must not leak into the answer
			}
			if err := Prepare(dst, tc.img, mnistInput); !errors.Is(err, ErrNoDigit) {
				t.Fatalf("got %v; want ErrNoDigit", err)
			}
			var sum float32
			for _, v := range dst {
				sum += v
			}
			if sum != 0 {
				t.Errorf("sum of the vector %g; want 0", sum)
			}
		})
	}
}

// redDisc returns a filled red disc on a green background, size pixels a side.
func redDisc(size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	r := float64(size) / 3
	for y := range size {
		for x := range size {
			c := color.RGBA{40, 160, 60, 255}
			if math.Hypot(float64(x)-float64(size)/2, float64(y)-float64(size)/2) <= r {
				c = color.RGBA{210, 30, 30, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// shaded returns a w x h gray picture whose value at (x, y) is f(x, y) in 0..1.
func shaded(w, h int, f func(x, y int) float64) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.Pix[y*g.Stride+x] = uint8(255*min(max(f(x, y), 0), 1) + 0.5)
		}
	}
	return g
}

// TestResize checks the resize mode: no inversion, the whole image, area averaging.
func TestResize(t *testing.T) {
	in := Spec{Width: 2, Height: 2, Mode: ModeResize}
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for y := range 4 {
		for x := range 4 {
			if x < 2 {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	img.SetGray(3, 3, color.Gray{Y: 255})
	dst := make([]float32, 4)
	if err := Prepare(dst, img, in); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 0, 1, 0.25}
	for i := range want {
		if math.Abs(float64(dst[i]-want[i])) > 1e-6 {
			t.Fatalf("got %v; want %v", dst, want)
		}
	}

	// Enlarging interpolates and keeps the corners.
	in = Spec{Width: 7, Height: 5, Mode: ModeResize}
	dst = make([]float32, 35)
	if err := Prepare(dst, img, in); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 1 || dst[6] != 0 || dst[34] != 1 {
		t.Errorf("corners %v %v %v; want 1 0 1", dst[0], dst[6], dst[34])
	}
	for _, v := range dst {
		if v < 0 || v > 1 {
			t.Fatalf("value %v out of 0..1", v)
		}
	}
}

// TestPrepareArguments checks the errors for arguments no caller should pass.
func TestPrepareArguments(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 3, 3))
	for _, tc := range []struct {
		name string
		dst  []float32
		img  image.Image
		in   Spec
		want string
	}{
		{"a short dst is refused", make([]float32, 10), img, mnistInput, "dst has 10 elements"},
		{"a zero size is refused", nil, img, Spec{Mode: ModeMNIST}, "invalid input size"},
		{"an unknown mode is refused", make([]float32, 784), img, Spec{Width: 28, Height: 28, Mode: "magic"}, "unknown preprocessing"},
		{"an empty image is undecodable", make([]float32, 784), image.NewGray(image.Rect(0, 0, 0, 5)), mnistInput, "cannot be decoded"},
		{"a nil image is undecodable", make([]float32, 784), nil, mnistInput, "cannot be decoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Prepare(tc.dst, tc.img, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestImageTypes checks that every fast path agrees with the generic image.Image.At path on the same picture.
func TestImageTypes(t *testing.T) {
	set := mnistTest(t)
	ink := uploadtest.InkMap(set.Image(0), 100)
	rgba := uploadtest.Paint{Paper: uploadtest.OffWhite, Ink: color.RGBA{20, 40, 120, 255}}.RGBA(ink, 100, 100, rand.New(rand.NewPCG(1, 2)))
	want := make([]float32, 784)
	if err := Prepare(want, atOnly{rgba}, mnistInput); err != nil {
		t.Fatal(err)
	}
	convert := func(m draw.Image) image.Image {
		draw.Draw(m, m.Bounds(), rgba, image.Point{}, draw.Src)
		return m
	}
	r := rgba.Bounds()
	for _, img := range []image.Image{
		rgba,
		convert(image.NewNRGBA(r)),
		convert(image.NewRGBA64(r)),
		convert(image.NewNRGBA64(r)),
		convert(image.NewPaletted(r, gray256())),
		convert(image.NewGray(r)),
		convert(image.NewGray16(r)),
		ycbcr(rgba),
	} {
		t.Run(fmt.Sprintf("%T", img), func(t *testing.T) {
			got := make([]float32, 784)
			if err := Prepare(got, img, mnistInput); err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i := range got {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			if worst > 0.03 {
				t.Errorf("largest difference from the At path %.4f; want at most 0.03", worst)
			}
		})
	}
}

// atOnly hides an image's concrete type, forcing the generic path.
type atOnly struct{ image.Image }

func gray256() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{Y: uint8(i)}
	}
	return p
}

func ycbcr(m *image.RGBA) *image.YCbCr {
	r := m.Bounds()
	y := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for j := range r.Dy() {
		for i := range r.Dx() {
			c := m.RGBAAt(i, j)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			y.Y[y.YOffset(i, j)] = yy
			y.Cb[y.COffset(i, j)] = cb
			y.Cr[y.COffset(i, j)] = cr
		}
	}
	return y
}

// TestGrayFastPathIsExact checks that the table lookup for 8-bit gray images at working size gives bit for bit what
// the general path gives for the same levels as opaque RGBA, on a real digit and on noise.
func TestGrayFastPathIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	noise := image.NewGray(image.Rect(3, 7, 63, 47)) // an offset origin, as a sub-image has
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.IntN(256))
	}
	for name, g := range map[string]*image.Gray{"digit": uploadtest.DigitGray(mnistTest(t).Image(7)), "noise": noise} {
		rgba := image.NewRGBA(g.Bounds())
		draw.Draw(rgba, rgba.Bounds(), g, g.Bounds().Min, draw.Src)
		want, got := make([]float32, 784), make([]float32, 784)
		errWant := Prepare(want, rgba, mnistInput)
		errGot := Prepare(got, g, mnistInput)
		if errWant != errGot || (errWant != nil && !errors.Is(errWant, ErrNoDigit)) {
			t.Fatalf("%s: error %v through the gray path, %v through the RGBA path", name, errGot, errWant)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: input %d is %v through the gray path, %v through the RGBA path", name, i, got[i], want[i])
			}
		}
	}
}
