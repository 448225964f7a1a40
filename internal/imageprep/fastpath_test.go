package imageprep

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// fastAndFull prepares img both ways, each with its own Preparer, and reports whether the fast path took it.
func fastAndFull(t testing.TB, img image.Image, spec Spec) (handled bool, fast, full []float32, fastDigit, fullDigit bool) {
	t.Helper()
	var pf, pp Preparer
	fast, full = make([]float32, spec.Width*spec.Height), make([]float32, spec.Width*spec.Height)
	for i := range fast {
		fast[i] = -1 // a value the fast path must overwrite, even when it finds no digit
	}
	handled, fastDigit = pf.mnistFast(fast, img, spec.Width, spec.Height)
	fullDigit = pp.mnist(full, img, spec.Width, spec.Height, true)
	return handled, fast, full, fastDigit, fullDigit
}

// sameVector fails the test unless the fast path took img and gave bit for bit what the full pipeline gives.
func sameVector(t *testing.T, name string, img image.Image, spec Spec, mustHandle bool) bool {
	t.Helper()
	handled, fast, full, fastDigit, fullDigit := fastAndFull(t, img, spec)
	return sameAnswer(t, name, "the fast path", handled, mustHandle, fast, full, fastDigit, fullDigit)
}

// sameAnswer fails the test unless path handled the image (when mustHandle) and gave fast and fastDigit equal, bit
// for bit, to the full pipeline's full and fullDigit. It reports whether path handled it.
func sameAnswer(t *testing.T, name, path string, handled, mustHandle bool, fast, full []float32, fastDigit, fullDigit bool) bool {
	t.Helper()
	if !handled {
		if mustHandle {
			t.Errorf("%s: %s declined it; want it taken", name, path)
		}
		return false
	}
	if fastDigit != fullDigit {
		t.Errorf("%s: digit %v through %s, %v through the full pipeline", name, fastDigit, path, fullDigit)
		return true
	}
	for i := range fast {
		if fast[i] != full[i] {
			t.Errorf("%s: input %d is %v through %s, %v through the full pipeline", name, i, fast[i], path, full[i])
			return true
		}
	}
	return true
}

// TestFastPathMatchesThePipeline checks the fast path against the full pipeline, bit for bit, on all 10,000 MNIST
// test digits as an 8-bit gray image (the form MNIST clients send), as opaque RGBA and NRGBA (a canvas exported
// without transparency), as a sub-image with an offset origin, at another input size, and on every upload form where
// it applies.
func TestFastPathMatchesThePipeline(t *testing.T) {
	set := mnistTest(t)
	n := set.Len()
	if testing.Short() {
		n = 300
	}
	scaleOne := 0
	for i := range n {
		g := uploadtest.DigitGray(set.Image(i))
		sameVector(t, "gray digit", g, mnistInput, true)
		// Dark ink on white paper, and ink on a dark field that is not quite black.
		sameVector(t, "inverted gray digit", levelMap(g, func(v uint8) uint8 { return 255 - v }), mnistInput, true)
		lift := uint8(1 + i%5)
		sameVector(t, "gray digit on a dark gray field", levelMap(g, func(v uint8) uint8 { return max(v, lift) }), mnistInput, true)
		// Its first pixel ink, the background the last pixel's level.
		corner := cornerDigit(g)
		sameVector(t, "gray digit in the top left corner", corner, mnistInput, true)
		sameVector(t, "inverted gray digit in the top left corner", levelMap(corner, func(v uint8) uint8 { return 255 - v }), mnistInput, true)
		if b := g.Bounds(); max(b.Dx(), b.Dy()) > 0 {
			var p Preparer
			x0, y0, x1, y1, _ := p.keepComponents(p.flatInkOf(g), 28, 28)
			if max(x1-x0, y1-y0) == 20 {
				scaleOne++
			}
		}
		if i%10 == 0 {
			rgba := image.NewRGBA(g.Bounds())
			draw.Draw(rgba, rgba.Bounds(), g, image.Point{}, draw.Src)
			nrgba := image.NewNRGBA(g.Bounds())
			draw.Draw(nrgba, nrgba.Bounds(), g, image.Point{}, draw.Src)
			sameVector(t, "opaque RGBA digit", rgba, mnistInput, true)
			sameVector(t, "opaque NRGBA digit", nrgba, mnistInput, true)
			big := image.NewGray(image.Rect(0, 0, 40, 36))
			draw.Draw(big, image.Rect(5, 3, 33, 31), g, image.Point{}, draw.Src)
			sameVector(t, "sub-image digit", big.SubImage(image.Rect(5, 3, 33, 31)), mnistInput, true)
			sameVector(t, "gray digit, 20x32 input", g, Spec{Width: 20, Height: 32, Mode: ModeMNIST}, true)
		}
		if t.Failed() {
			t.Fatalf("stopped at digit %d", i)
		}
	}
	t.Logf("%d of %d digits have a 20-pixel box, which fit copies", scaleOne, n)

	taken := 0
	for fi, f := range uploadtest.All() {
		k := 20
		if f.Large {
			k = 2
		}
		if testing.Short() {
			if f.Large {
				continue // slow to make, and the fast path never takes them
			}
			k = 1
		}
		rng := rand.New(rand.NewPCG(uint64(fi), 19))
		for j := range k {
			img, _, err := Decode(f.Make(set.Image(j*37), rng), Limits{})
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			if sameVector(t, f.Name, img, mnistInput, false) {
				taken++
			}
			// The fast PNG decoder's images, which PrepareBytes prepares, too.
			if data := f.Make(set.Image(j*37), rng); bytes.HasPrefix(data, pngSignature) {
				var d pngDecoder
				if img, ok := d.decode(data, DefaultMaxPixels); ok && sameVector(t, f.Name+" (fast PNG decoder)", img, mnistInput, false) {
					taken++
				}
			}
		}
	}
	if taken == 0 {
		t.Errorf("the fast path took none of the upload forms; want at least the raw 28x28 PNG")
	}
}

// cornerDigit returns a copy of g moved up and left so that its first pixel is the first pixel of ink of its top row
// of ink.
func cornerDigit(g *image.Gray) *image.Gray {
	b := g.Bounds()
	w, h := b.Dx(), b.Dy()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range g.Pix[:w*h] {
		if v != 0 {
			dx, dy := i%w, i/w
			for y := dy; y < h; y++ {
				for x := dx; x < w; x++ {
					m.Pix[(y-dy)*w+x-dx] = g.Pix[y*w+x]
				}
			}
			break
		}
	}
	return m
}

// levelMap returns a copy of g with every level v replaced by f(v).
func levelMap(g *image.Gray, f func(uint8) uint8) *image.Gray {
	m := image.NewGray(g.Bounds())
	for i, v := range g.Pix {
		m.Pix[i] = f(v)
	}
	return m
}

// flatInkOf is the ink mnist works on for an MNIST-like gray image, for the test to find its box.
func (p *Preparer) flatInkOf(g *image.Gray) []float32 {
	v := p.luminance(p.reduce(g, 1))
	ink, _ := p.flatInk(v, 0)
	return ink
}

// TestFastPathNearMNIST checks the fast path against the full pipeline on random images near an MNIST digit: specks,
// faint and saturated ink, bold blots, other sizes, a dark but nonzero background, nearly blank fields, and images it
// must decline. Every case the fast path takes must match bit for bit; those it declines are left to the pipeline.
func TestFastPathNearMNIST(t *testing.T) {
	set := mnistTest(t)
	rng := rand.New(rand.NewPCG(3, 4))
	rounds := 3000
	if testing.Short() {
		rounds = 600
	}
	taken := 0
	for r := range rounds {
		if nearMNISTCase(t, set.Image(rng.IntN(set.Len())), rng, r) {
			taken++
		}
	}
	if taken < rounds/3 {
		t.Errorf("the fast path took %d of %d cases; want at least a third, or the test checks little", taken, rounds)
	}
	t.Logf("the fast path took %d of %d cases", taken, rounds)
}

// FuzzFastPath checks, on fuzzed variations of an MNIST digit, that the fast path matches the full pipeline
// wherever it applies:
//
//	go test ./internal/imageprep -run '^$' -fuzz FuzzFastPath -fuzztime 1m
func FuzzFastPath(f *testing.F) {
	f.Add(uint64(1), uint64(2), 0)
	f.Add(uint64(7), uint64(9), 123)
	set := mnistTest(f)
	f.Fuzz(func(t *testing.T, a, b uint64, digit int) {
		digit = ((digit % set.Len()) + set.Len()) % set.Len()
		nearMNISTCase(t, set.Image(digit), rand.New(rand.NewPCG(a, b)), 0)
	})
}

// nearMNISTCase perturbs the 28x28 digit pix at random into an image near it, and compares the two paths on it.
// It reports whether the fast path took the image.
func nearMNISTCase(t *testing.T, pix []byte, rng *rand.Rand, r int) bool {
	t.Helper()
	w, h := 28, 28
	if rng.IntN(4) == 0 {
		// Other sizes, on both sides of bitRowMax: rows of one word of bits, and the float path beyond.
		w, h = 16+rng.IntN(100), 16+rng.IntN(100)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	dx, dy := rng.IntN(9)-4, rng.IntN(9)-4
	gain := 0.05 + 1.5*rng.Float64()
	for y := range 28 {
		for x := range 28 {
			if X, Y := x+dx, y+dy; X >= 0 && Y >= 0 && X < w && Y < h {
				g.Pix[Y*w+X] = uint8(min(255, float64(pix[y*28+x])*gain))
			}
		}
	}
	switch rng.IntN(6) {
	case 0: // specks
		for range rng.IntN(8) {
			g.Pix[rng.IntN(w*h)] = uint8(rng.IntN(256))
		}
	case 1: // a filled square, a blot
		s := 4 + rng.IntN(14)
		x0, y0 := rng.IntN(max(1, w-s)), rng.IntN(max(1, h-s))
		for y := y0; y < min(h, y0+s); y++ {
			for x := x0; x < min(w, x0+s); x++ {
				g.Pix[y*w+x] = 200 + uint8(rng.IntN(56))
			}
		}
	case 2: // low-level noise everywhere, so the background is not flat
		for i := range g.Pix {
			if rng.IntN(3) == 0 {
				g.Pix[i] = max(g.Pix[i], uint8(rng.IntN(4)))
			}
		}
	case 3: // a ruled line
		y := rng.IntN(h)
		for x := range w {
			g.Pix[y*w+x] = 255
		}
	case 4: // nearly blank
		clear(g.Pix)
		for range rng.IntN(3) {
			g.Pix[rng.IntN(w*h)] = uint8(rng.IntN(30))
		}
	}
	// The field lifted off black (at most 0.02 is still a flat dark background, beyond it is not), and then often
	// the polarity turned round: ink dark on light paper.
	if rng.IntN(3) == 0 {
		lift := uint8(rng.IntN(9))
		for i, v := range g.Pix {
			g.Pix[i] = max(v, lift)
		}
	}
	if rng.IntN(2) == 0 {
		for i, v := range g.Pix {
			g.Pix[i] = 255 - v
		}
	}
	var img image.Image = g
	if rng.IntN(3) == 0 {
		m := image.NewNRGBA(g.Bounds())
		for i, v := range g.Pix {
			a := uint8(255)
			if rng.IntN(200) == 0 {
				a = uint8(rng.IntN(256)) // an occasional transparent pixel: the fast path must decline
			}
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = v, v, v, a
		}
		img = m
	}
	if rng.IntN(5) == 0 {
		m := image.NewRGBA(g.Bounds())
		for i, v := range g.Pix {
			m.SetRGBA(i%w, i/w, color.RGBA{v, v / 2, 255 - v, 255}) // colour: gray-compatible only through lum8
		}
		img = m
	}
	return sameVector(t, "near-MNIST case "+itoa(r), img, mnistInput, false)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

// TestFitAtScaleOneIsACopy checks the shortcut of fit for a box that fits as it is: the kernels it skips give the
// box's values exactly, on every MNIST test digit.
func TestFitAtScaleOneIsACopy(t *testing.T) {
	set := mnistTest(t)
	var p Preparer
	copies := 0
	for i := range set.Len() {
		ink := p.flatInkOf(uploadtest.DigitGray(set.Image(i)))
		x0, y0, x1, y1, ok := p.keepComponents(ink, 28, 28)
		if !ok || max(x1-x0, y1-y0) != 20 {
			continue
		}
		copies++
		pw, ph := x1-x0, y1-y0
		cx, cy := float64(x0+x1)/2, float64(y0+y1)/2
		p.kx.set(pw, cx-float64(pw)/2, float64(pw), 28, true)
		p.ky.set(ph, cy-float64(ph)/2, float64(ph), 28, true)
		got := make([]float32, pw*ph)
		p.tmp = resample(got, pw, ph, ink, 28, &p.kx, &p.ky, p.tmp)
		for y := range ph {
			for x := range pw {
				if want := ink[(y0+y)*28+x0+x]; got[y*pw+x] != want {
					t.Fatalf("digit %d: resampled (%d, %d) is %v; the box holds %v", i, x, y, got[y*pw+x], want)
				}
			}
		}
	}
	if copies == 0 {
		t.Fatal("no digit has a 20-pixel box; the test checks nothing")
	}
	t.Logf("%d digits checked", copies)
}

// sameAlphaVector fails the test unless mnistAlpha took img and gave bit for bit what the full pipeline gives.
func sameAlphaVector(t *testing.T, name string, img image.Image, mustHandle bool) bool {
	t.Helper()
	var pf, pp Preparer
	fast, full := make([]float32, 784), make([]float32, 784)
	for i := range fast {
		fast[i] = -1
	}
	handled, fastDigit := pf.mnistAlpha(fast, img, 28, 28)
	fullDigit := pp.mnist(full, img, 28, 28, true)
	return sameAnswer(t, name, "mnistAlpha", handled, mustHandle, fast, full, fastDigit, fullDigit)
}

// TestAlphaPathMatchesThePipeline checks mnistAlpha against the full pipeline, bit for bit, on canvas drawings of the
// MNIST test digits: the page's dark ink (#111111) on a transparent field and white ink on one, as NRGBA (what a PNG
// decodes to) and as premultiplied RGBA, at 28x28, as a sub-image, and scaled up to a larger canvas within the
// working size; and through PrepareBytes on the PNG.
func TestAlphaPathMatchesThePipeline(t *testing.T) {
	set := mnistTest(t)
	n := set.Len()
	if testing.Short() {
		n = 200
	}
	dark, light := color.NRGBA{0x11, 0x11, 0x11, 0}, color.NRGBA{255, 255, 255, 0}
	for i := range n {
		pix := set.Image(i)
		ink := uploadtest.InkMap(pix, 28)
		for _, stroke := range []color.NRGBA{dark, light} {
			c := uploadtest.Canvas(ink, 28, stroke)
			sameAlphaVector(t, "canvas digit", c, true)
			if i%10 != 0 {
				continue
			}
			rgba := image.NewRGBA(c.Bounds())
			draw.Draw(rgba, rgba.Bounds(), c, image.Point{}, draw.Src)
			sameAlphaVector(t, "premultiplied canvas digit", rgba, true)
			big := image.NewNRGBA(image.Rect(0, 0, 40, 36))
			draw.Draw(big, image.Rect(5, 3, 33, 31), c, image.Point{}, draw.Src)
			sameAlphaVector(t, "sub-image canvas digit", big.SubImage(image.Rect(5, 3, 33, 31)), true)
		}
		if i%50 == 0 {
			side := 100 + i%157 // up to workSide, the largest the path takes
			sameAlphaVector(t, "large canvas digit", uploadtest.Canvas(uploadtest.InkMap(pix, side), side, dark), true)
		}
		if t.Failed() {
			t.Fatalf("stopped at digit %d", i)
		}
	}
	// Through the bytes a client sends, with the fast PNG decoder.
	data := uploadtest.EncodePNG(uploadtest.Canvas(uploadtest.InkMap(set.Image(0), 200), 200, dark))
	var p, q Preparer
	got, want := make([]float32, 784), make([]float32, 784)
	if _, err := p.PrepareBytes(got, data, Limits{}, mnistInput); err != nil {
		t.Fatal(err)
	}
	img, _, err := Decode(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	q.mnist(want, img, 28, 28, true)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("PrepareBytes of a canvas PNG: input %d is %v, the full pipeline's %v", i, got[i], want[i])
		}
	}
}

// TestAlphaPathNearCanvas checks mnistAlpha against the full pipeline on random canvas drawings near an MNIST digit:
// any ink colour, specks, a partly opaque or coloured field, blots, other sizes, beyond the working size; every case
// it takes must match bit for bit.
func TestAlphaPathNearCanvas(t *testing.T) {
	set := mnistTest(t)
	rng := rand.New(rand.NewPCG(5, 6))
	rounds := 1500
	if testing.Short() {
		rounds = 300
	}
	taken := 0
	for r := range rounds {
		if nearCanvasCase(t, set.Image(rng.IntN(set.Len())), rng, r) {
			taken++
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if taken < rounds/3 {
		t.Errorf("mnistAlpha took %d of %d cases; want at least a third, or the test checks little", taken, rounds)
	}
	t.Logf("mnistAlpha took %d of %d cases", taken, rounds)
}

// FuzzAlphaPath checks, on fuzzed canvas drawings near an MNIST digit, that mnistAlpha matches the full pipeline
// wherever it applies:
//
//	go test ./internal/imageprep -run '^$' -fuzz FuzzAlphaPath -fuzztime 1m
func FuzzAlphaPath(f *testing.F) {
	f.Add(uint64(1), uint64(2), 0)
	f.Add(uint64(5), uint64(8), 321)
	set := mnistTest(f)
	f.Fuzz(func(t *testing.T, a, b uint64, digit int) {
		digit = ((digit % set.Len()) + set.Len()) % set.Len()
		nearCanvasCase(t, set.Image(digit), rand.New(rand.NewPCG(a, b)), 0)
	})
}

// nearCanvasCase draws the 28x28 digit pix at random as a canvas drawing near the page's, perturbed, and compares
// mnistAlpha with the full pipeline on it. It reports whether mnistAlpha took the image.
func nearCanvasCase(t *testing.T, pix []byte, rng *rand.Rand, r int) bool {
	t.Helper()
	side := 28
	switch rng.IntN(4) {
	case 0:
		side = 16 + rng.IntN(60)
	case 1:
		side = 200 + rng.IntN(80) // either side of workSide
	}
	stroke := color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 0}
	m := uploadtest.Canvas(uploadtest.InkMap(pix, side), side, stroke)
	switch rng.IntN(6) {
	case 0: // specks of any colour and alpha
		for range rng.IntN(8) {
			i := 4 * rng.IntN(side*side)
			for k := range 4 {
				m.Pix[i+k] = uint8(rng.IntN(256))
			}
		}
	case 1: // a field partly filled in: opaque white, or a faint tint
		a := uint8(255)
		if rng.IntN(2) == 0 {
			a = uint8(rng.IntN(20))
		}
		for i := 0; i < len(m.Pix); i += 4 {
			if m.Pix[i+3] == 0 && rng.IntN(3) > 0 {
				m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = 255, 255, 255, a
			}
		}
	case 2, 3: // a blot next to the digit, or alone (then there are no strokes: no digit)
		if rng.IntN(2) == 0 {
			clear(m.Pix)
		}
		s := side/8 + rng.IntN(side/2)
		x0, y0 := rng.IntN(side-s), rng.IntN(side-s)
		for y := y0; y < y0+s; y++ {
			for x := x0; x < x0+s; x++ {
				m.SetNRGBA(x, y, color.NRGBA{stroke.R, stroke.G, stroke.B, 255})
			}
		}
	}
	var img image.Image = m
	if rng.IntN(4) == 0 {
		rgba := image.NewRGBA(m.Bounds())
		draw.Draw(rgba, rgba.Bounds(), m, image.Point{}, draw.Src)
		img = rgba
	}
	return sameAlphaVector(t, "near-canvas case "+itoa(r), img, false)
}
