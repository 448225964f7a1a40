package uploadtest

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// NonDigit is an upload that holds no single digit, as a user might send one by mistake or to try the service.
type NonDigit struct {
	Family string
	// InkFree is true for pictures with nothing drawn on them (paper, shading, noise): preprocessing itself should
	// find no digit in them. The others have ink (letters, shapes, textures, two digits), and only the model's
	// confidence can tell.
	InkFree bool
	Data    []byte
}

// NonDigitFamilies names the families NonDigits makes, ink-free ones first.
var NonDigitFamilies = []string{
	"blank paper", "shaded paper", "noise",
	"texture", "letter", "shape", "two digits",
}

// Letters are the letters rendered: the Latin alphabet without the ones that are drawn as a digit in most hands
// and fonts (O o D as 0; I l i as 1; Z z as 2; S s as 5; b G as 6; B as 8; g q as 9), which no classifier of digits
// could reject and no user would expect it to.
const Letters = "ACEFHJKLMNPQRTUVWXYacdefhjkmnprtuvwxy"

// NonDigits makes perFamily uploads of every family, drawn from rng, in the forms uploads take (PNG and JPEG, gray
// and colour, 28 to 600 pixels a side). digit returns an MNIST digit's 784 pixels for the "two digits" family;
// digits counts them.
func NonDigits(perFamily int, rng *rand.Rand, digit func(i int) []byte, digits int) []NonDigit {
	fonts := loadFonts()
	var out []NonDigit
	for _, family := range NonDigitFamilies {
		for range perFamily {
			var img image.Image
			inkFree := true
			switch family {
			case "blank paper":
				img = blankPaper(rng)
			case "shaded paper":
				img = shadedPaper(rng)
			case "noise":
				img = noise(rng)
			case "texture":
				img, inkFree = texture(rng), false
			case "letter":
				img, inkFree = letter(fonts, rng), false
			case "shape":
				img, inkFree = shape(rng), false
			case "two digits":
				img, inkFree = twoDigits(digit(rng.IntN(digits)), digit(rng.IntN(digits)), rng), false
			}
			var data []byte
			if rng.IntN(2) == 0 {
				data = EncodePNG(img)
			} else {
				data = EncodeJPEG(img, 60+rng.IntN(35))
			}
			out = append(out, NonDigit{Family: family, InkFree: inkFree, Data: data})
		}
	}
	return out
}

// side draws an image size between 28 and 600 pixels, favouring the small ones uploads mostly are.
func side(rng *rand.Rand) int { return 28 + int(572*math.Pow(rng.Float64(), 2)) }

// paperColour draws a light paper colour (white, cream, grey, pastel) or, one time in four, a dark one.
func paperColour(rng *rand.Rand) [3]float64 {
	if rng.IntN(4) == 0 {
		v := 10 + 60*rng.Float64()
		return [3]float64{v + 20*rng.Float64(), v + 20*rng.Float64(), v + 20*rng.Float64()}
	}
	v := 180 + 70*rng.Float64()
	return [3]float64{v - 30*rng.Float64(), v - 30*rng.Float64(), v - 30*rng.Float64()}
}

// fill paints a w x h picture whose colour at (x, y) is f(x, y) plus Gaussian noise of deviation sd.
func fill(w, h int, sd float64, rng *rand.Rand, f func(x, y int) [3]float64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := f(x, y)
			px := img.Pix[img.PixOffset(x, y):]
			for k := range 3 {
				px[k] = clamp8(c[k] + sd*rng.NormFloat64())
			}
			px[3] = 255
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(min(max(v+0.5, 0), 255)) }

// blankPaper is a sheet of paper photographed or scanned: a uniform colour with sensor noise and, sometimes, a
// slight fall-off of the light.
func blankPaper(rng *rand.Rand) image.Image {
	w, h := side(rng), side(rng)
	c, sd, fall := paperColour(rng), 6*rng.Float64(), 0.1*rng.Float64()
	return fill(w, h, sd, rng, func(x, y int) [3]float64 {
		l := 1 - fall*float64(x+y)/float64(w+h)
		return [3]float64{c[0] * l, c[1] * l, c[2] * l}
	})
}

// shadedPaper is a smooth shading: a linear gradient across the whole range, or a vignette, in grey or colour.
func shadedPaper(rng *rand.Rand) image.Image {
	w, h := side(rng), side(rng)
	a, b := paperColour(rng), paperColour(rng)
	angle, sd, radial := 2*math.Pi*rng.Float64(), 3*rng.Float64(), rng.IntN(3) == 0
	cx, cy := float64(w)*rng.Float64(), float64(h)*rng.Float64()
	return fill(w, h, sd, rng, func(x, y int) [3]float64 {
		var t float64
		if radial {
			t = min(math.Hypot(float64(x)-cx, float64(y)-cy)/math.Hypot(float64(w), float64(h)), 1)
		} else {
			t = 0.5 + (math.Cos(angle)*(float64(x)/float64(w)-0.5) + math.Sin(angle)*(float64(y)/float64(h)-0.5))
		}
		t = min(max(t, 0), 1)
		return [3]float64{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1]), a[2] + t*(b[2]-a[2])}
	})
}

// noise is a picture of nothing but noise: white or Gaussian, grey or coloured, of any strength.
func noise(rng *rand.Rand) image.Image {
	w, h := side(rng), side(rng)
	c, sd, colour, uniform := paperColour(rng), 5+60*rng.Float64(), rng.IntN(2) == 0, rng.IntN(2) == 0
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		var g float64
		if uniform {
			g = 255 * rng.Float64()
		} else {
			g = c[0] + sd*rng.NormFloat64()
		}
		for k := range 3 {
			v := g
			if colour {
				v = c[k] + sd*rng.NormFloat64()
				if uniform {
					v = 255 * rng.Float64()
				}
			}
			img.Pix[i+k] = clamp8(v)
		}
		img.Pix[i+3] = 255
	}
	return img
}

// texture is natural-image-like: fractal value noise (the sum of smoothly interpolated random lattices at doubling
// frequencies, amplitude halving, as the spectra of photos of foliage, clouds, stone and fabric fall off), mapped
// between two colours.
func texture(rng *rand.Rand) image.Image {
	w, h := side(rng), side(rng)
	a, b := paperColour(rng), paperColour(rng)
	if rng.IntN(2) == 0 {
		b = [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()}
	}
	octaves := 3 + rng.IntN(4)
	base := 2 + rng.IntN(6)
	lattices := make([][]float64, octaves)
	for o := range lattices {
		n := base<<o + 2
		lattices[o] = make([]float64, n*n)
		for i := range lattices[o] {
			lattices[o][i] = rng.Float64()
		}
	}
	return fill(w, h, 2, rng, func(x, y int) [3]float64 {
		var v, amp, total float64 = 0, 1, 0
		for o, lat := range lattices {
			f := float64(base << o)
			n := base<<o + 2
			fx, fy := float64(x)/float64(w)*f, float64(y)/float64(h)*f
			ix, iy := int(fx), int(fy)
			tx, ty := smooth(fx-float64(ix)), smooth(fy-float64(iy))
			at := func(i, j int) float64 { return lat[j*n+i] }
			top := at(ix, iy)*(1-tx) + at(ix+1, iy)*tx
			bot := at(ix, iy+1)*(1-tx) + at(ix+1, iy+1)*tx
			v += amp * (top*(1-ty) + bot*ty)
			total += amp
			amp /= 2
		}
		t := v / total
		return [3]float64{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1]), a[2] + t*(b[2]-a[2])}
	})
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// loadFonts parses the Go fonts, regular, bold and italic.
func loadFonts() []*opentype.Font {
	var fonts []*opentype.Font
	for _, ttf := range [][]byte{goregular.TTF, gobold.TTF, goitalic.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			panic(err)
		}
		fonts = append(fonts, f)
	}
	return fonts
}

// letter renders one letter of Letters in a Go font, dark on light paper or light on dark, at a size that fills
// half to nine tenths of the picture, somewhere near its middle.
func letter(fonts []*opentype.Font, rng *rand.Rand) image.Image {
	s := max(side(rng), 40)
	paper := paperColour(rng)
	ink := [3]float64{20 + 60*rng.Float64(), 20 + 60*rng.Float64(), 20 + 60*rng.Float64()}
	if paper[0] < 128 {
		ink = [3]float64{200 + 55*rng.Float64(), 200 + 55*rng.Float64(), 200 + 55*rng.Float64()}
	}
	img := fill(s, s, 3*rng.Float64(), rng, func(x, y int) [3]float64 { return paper })
	size := float64(s) * (0.5 + 0.4*rng.Float64())
	face, err := opentype.NewFace(fonts[rng.IntN(len(fonts))], &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		panic(err)
	}
	defer face.Close()
	r := string(Letters[rng.IntN(len(Letters))])
	bounds, _ := font.BoundString(face, r)
	gw, gh := (bounds.Max.X - bounds.Min.X).Round(), (bounds.Max.Y - bounds.Min.Y).Round()
	x0 := (s-gw)/2 + int(0.1*float64(s)*(rng.Float64()-0.5)) - bounds.Min.X.Round()
	y0 := (s-gh)/2 + int(0.1*float64(s)*(rng.Float64()-0.5)) - bounds.Min.Y.Round()
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{clamp8(ink[0]), clamp8(ink[1]), clamp8(ink[2]), 255}), Face: face,
		Dot: fixed.P(x0, y0)}
	d.DrawString(r)
	return img
}

// shape is a filled geometric shape (disc, ellipse, square, rectangle, triangle or star) in one colour on a
// background of another, like the red disc on green of a test picture.
func shape(rng *rand.Rand) image.Image {
	s := side(rng)
	bg := [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()}
	fg := [3]float64{255 - bg[0] + 60*rng.NormFloat64(), 255 - bg[1] + 60*rng.NormFloat64(), 255 - bg[2] + 60*rng.NormFloat64()}
	cx, cy := float64(s)*(0.4+0.2*rng.Float64()), float64(s)*(0.4+0.2*rng.Float64())
	r := float64(s) * (0.15 + 0.25*rng.Float64())
	aspect, rot := 0.5+rng.Float64(), math.Pi*rng.Float64()
	kind := rng.IntN(5)
	inside := func(x, y float64) bool {
		dx, dy := x-cx, y-cy
		u, v := dx*math.Cos(rot)+dy*math.Sin(rot), -dx*math.Sin(rot)+dy*math.Cos(rot)
		switch kind {
		case 0: // disc
			return dx*dx+dy*dy <= r*r
		case 1: // ellipse
			return u*u/(r*r)+v*v/(r*r*aspect*aspect) <= 1
		case 2: // square or rectangle
			return math.Abs(u) <= r && math.Abs(v) <= r*aspect
		case 3: // triangle
			a := math.Atan2(v, u)
			sector := math.Mod(a+2*math.Pi, 2*math.Pi/3) - math.Pi/3
			return math.Hypot(u, v)*math.Cos(sector) <= r/2
		default: // five-pointed star
			a := math.Atan2(v, u)
			k := math.Abs(math.Mod(a+2*math.Pi, 2*math.Pi/5)/(2*math.Pi/5) - 0.5)
			return math.Hypot(u, v) <= r*(0.45+1.1*k)
		}
	}
	img := fill(s, s, 4*rng.Float64(), rng, func(x, y int) [3]float64 {
		// Four samples per pixel anti-alias the edge, as a drawing program would.
		cover := 0.0
		for _, o := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
			if inside(float64(x)+o[0], float64(y)+o[1]) {
				cover += 0.25
			}
		}
		return [3]float64{bg[0] + cover*(fg[0]-bg[0]), bg[1] + cover*(fg[1]-bg[1]), bg[2] + cover*(fg[2]-bg[2])}
	})
	return img
}

// twoDigits places two MNIST digits side by side, dark ink on light paper, as a number of two digits is written.
func twoDigits(a, b []byte, rng *rand.Rand) image.Image {
	const size = 112
	gap := rng.IntN(size / 4)
	w := 2*size + gap
	ink := make([]float64, w*size)
	for k, pix := range [2][]byte{a, b} {
		m := InkMap(pix, size)
		x0 := k * (size + gap)
		for y := range size {
			for x := range size {
				ink[y*w+x0+x] = max(ink[y*w+x0+x], m[y*size+x])
			}
		}
	}
	return Paint{Paper: White, Ink: Black, Noise: 4 * rng.Float64()}.RGBA(ink, w, size, rng)
}
