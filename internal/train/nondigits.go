package train

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobolditalic"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/gomediumitalic"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/gosmallcaps"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The gate's negatives: pictures people upload to a digit reader that are not one digit. Each is drawn on a canvas
// of intensities (0 paper, 1 ink), then put on paper of some shade with ink of another, with grain, and sometimes
// JPEG-compressed, so that it reaches preprocessing as an upload would.

// gateLetters are the letters drawn: those that no hand or font makes look like a digit (O o D Q as 0, I l i as 1,
// Z z as 2, S s as 5, b G as 6, B as 8, g q as 9 are left out: a digit reader must not reject them).
const gateLetters = "ACEFHJKLMNPRTUVWXYacdefhkmnrtuvwxy"

// gateFamilies are the kinds of negative, drawn in turn.
// Letters come up three times as often as the rest: they are the hardest to tell from digits.
var gateFamilies = []string{"font letter", "drawn letter", "several digits", "font letter", "scribble", "outline",
	"drawn letter", "filled shape", "texture", "font letter", "word", "drawn letter"}

// canvas is a square picture of ink intensity in 0..1.
type canvas struct {
	n int
	v []float64
}

func newCanvas(n int) *canvas { return &canvas{n: n, v: make([]float64, n*n)} }

// dot inks a disc of radius r at (x, y), its edge anti-aliased over one pixel.
func (c *canvas) dot(x, y, r float64) {
	x0, x1 := max(int(x-r-1), 0), min(int(x+r+2), c.n)
	y0, y1 := max(int(y-r-1), 0), min(int(y+r+2), c.n)
	for py := y0; py < y1; py++ {
		for px := x0; px < x1; px++ {
			d := math.Hypot(float64(px)-x, float64(py)-y)
			a := min(max(r+0.5-d, 0), 1)
			if i := py*c.n + px; a > c.v[i] {
				c.v[i] = a
			}
		}
	}
}

// line strokes a segment with a pen of width w.
func (c *canvas) line(x0, y0, x1, y1, w float64) {
	steps := int(math.Hypot(x1-x0, y1-y0)*2) + 1
	for k := 0; k <= steps; k++ {
		t := float64(k) / float64(steps)
		c.dot(x0+(x1-x0)*t, y0+(y1-y0)*t, w/2)
	}
}

// poly strokes the points in order, closed when asked.
func (c *canvas) poly(pts [][2]float64, w float64, closed bool) {
	for i := 1; i < len(pts); i++ {
		c.line(pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1], w)
	}
	if closed && len(pts) > 2 {
		c.line(pts[len(pts)-1][0], pts[len(pts)-1][1], pts[0][0], pts[0][1], w)
	}
}

// fillPoly inks the inside of a polygon (even-odd rule, sampled at pixel centres).
func (c *canvas) fillPoly(pts [][2]float64) {
	for py := range c.n {
		for px := range c.n {
			x, y := float64(px)+0.5, float64(py)+0.5
			in := false
			for i, j := 0, len(pts)-1; i < len(pts); j, i = i, i+1 {
				a, b := pts[i], pts[j]
				if (a[1] > y) != (b[1] > y) && x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0] {
					in = !in
				}
			}
			if in {
				c.v[py*c.n+px] = 1
			}
		}
	}
}

// paste inks a rows x cols MNIST image (bytes, ink bright) scaled by s with its top left at (x, y).
func (c *canvas) paste(img []byte, rows, cols int, x, y, s float64) {
	for py := max(int(y), 0); py < min(int(y+float64(rows)*s)+1, c.n); py++ {
		for px := max(int(x), 0); px < min(int(x+float64(cols)*s)+1, c.n); px++ {
			sx, sy := int((float64(px)-x)/s), int((float64(py)-y)/s)
			if sx < 0 || sy < 0 || sx >= cols || sy >= rows {
				continue
			}
			if v := float64(img[sy*cols+sx]) / 255; v > c.v[py*c.n+px] {
				c.v[py*c.n+px] = v
			}
		}
	}
}

var gateFonts = sync.OnceValue(func() []*opentype.Font {
	var fonts []*opentype.Font
	for _, ttf := range [][]byte{gomono.TTF, gomonobold.TTF, gomedium.TTF, gomediumitalic.TTF, gobolditalic.TTF, gosmallcaps.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			panic("train: a Go font does not parse: " + err.Error())
		}
		fonts = append(fonts, f)
	}
	return fonts
})

// text draws s in one of gateFonts at size px, centred, into c (as ink).
func (c *canvas) text(s string, size float64, rng *rand.Rand) {
	fonts := gateFonts()
	face, err := opentype.NewFace(fonts[rng.IntN(len(fonts))], &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return
	}
	defer face.Close()
	dst := image.NewAlpha(image.Rect(0, 0, c.n, c.n))
	b, _ := font.BoundString(face, s)
	w, h := (b.Max.X - b.Min.X).Round(), (b.Max.Y - b.Min.Y).Round()
	jit := func() int { return int(float64(c.n) * 0.08 * (rng.Float64() - 0.5)) }
	d := font.Drawer{Dst: dst, Src: image.Opaque, Face: face,
		Dot: fixed.P((c.n-w)/2-b.Min.X.Round()+jit(), (c.n-h)/2-b.Min.Y.Round()+jit())}
	d.DrawString(s)
	for i, a := range dst.Pix {
		c.v[i] = max(c.v[i], float64(a)/255)
	}
}

// letterStrokes are hand-drawn skeletons of letters in a unit square, each a list of strokes.
var letterStrokes = map[byte][][][2]float64{
	'A': {{{0.1, 1}, {0.5, 0}, {0.9, 1}}, {{0.28, 0.6}, {0.72, 0.6}}},
	'E': {{{0.85, 0}, {0.15, 0}, {0.15, 1}, {0.85, 1}}, {{0.15, 0.5}, {0.7, 0.5}}},
	'F': {{{0.85, 0}, {0.15, 0}, {0.15, 1}}, {{0.15, 0.5}, {0.7, 0.5}}},
	'H': {{{0.15, 0}, {0.15, 1}}, {{0.85, 0}, {0.85, 1}}, {{0.15, 0.5}, {0.85, 0.5}}},
	'K': {{{0.2, 0}, {0.2, 1}}, {{0.85, 0}, {0.2, 0.55}, {0.85, 1}}},
	'L': {{{0.2, 0}, {0.2, 1}, {0.85, 1}}},
	'M': {{{0.1, 1}, {0.15, 0}, {0.5, 0.6}, {0.85, 0}, {0.9, 1}}},
	'N': {{{0.15, 1}, {0.15, 0}, {0.85, 1}, {0.85, 0}}},
	'T': {{{0.1, 0}, {0.9, 0}}, {{0.5, 0}, {0.5, 1}}},
	'V': {{{0.1, 0}, {0.5, 1}, {0.9, 0}}},
	'W': {{{0.05, 0}, {0.28, 1}, {0.5, 0.35}, {0.72, 1}, {0.95, 0}}},
	'X': {{{0.1, 0}, {0.9, 1}}, {{0.9, 0}, {0.1, 1}}},
	'Y': {{{0.1, 0}, {0.5, 0.5}, {0.9, 0}}, {{0.5, 0.5}, {0.5, 1}}},
	'U': {{{0.15, 0}, {0.15, 0.75}, {0.3, 0.97}, {0.7, 0.97}, {0.85, 0.75}, {0.85, 0}}},
	'C': {{{0.85, 0.15}, {0.6, 0}, {0.3, 0.05}, {0.12, 0.35}, {0.12, 0.65}, {0.3, 0.95}, {0.6, 1}, {0.85, 0.85}}},
	'P': {{{0.2, 1}, {0.2, 0}, {0.7, 0.03}, {0.85, 0.25}, {0.7, 0.47}, {0.2, 0.5}}},
	'R': {{{0.2, 1}, {0.2, 0}, {0.7, 0.03}, {0.85, 0.25}, {0.7, 0.47}, {0.2, 0.5}}, {{0.45, 0.5}, {0.85, 1}}},
	'J': {{{0.3, 0}, {0.85, 0}}, {{0.65, 0}, {0.65, 0.8}, {0.45, 1}, {0.2, 0.9}}},
	'h': {{{0.2, 0}, {0.2, 1}}, {{0.2, 0.55}, {0.5, 0.4}, {0.8, 0.55}, {0.8, 1}}},
	'k': {{{0.2, 0}, {0.2, 1}}, {{0.8, 0.4}, {0.2, 0.75}, {0.8, 1}}},
	'n': {{{0.2, 0.4}, {0.2, 1}}, {{0.2, 0.55}, {0.5, 0.4}, {0.8, 0.55}, {0.8, 1}}},
	'm': {{{0.1, 0.4}, {0.1, 1}}, {{0.1, 0.5}, {0.3, 0.4}, {0.5, 0.5}, {0.5, 1}}, {{0.5, 0.5}, {0.7, 0.4}, {0.9, 0.5}, {0.9, 1}}},
	'r': {{{0.3, 0.4}, {0.3, 1}}, {{0.3, 0.6}, {0.5, 0.42}, {0.8, 0.42}}},
	'w': {{{0.05, 0.4}, {0.28, 1}, {0.5, 0.55}, {0.72, 1}, {0.95, 0.4}}},
	'x': {{{0.2, 0.4}, {0.8, 1}}, {{0.8, 0.4}, {0.2, 1}}},
	'e': {{{0.2, 0.7}, {0.8, 0.7}, {0.75, 0.5}, {0.5, 0.4}, {0.25, 0.5}, {0.2, 0.75}, {0.35, 0.97}, {0.75, 0.95}}},
	'+': {{{0.5, 0.1}, {0.5, 0.9}}, {{0.1, 0.5}, {0.9, 0.5}}},
	'#': {{{0.35, 0}, {0.3, 1}}, {{0.7, 0}, {0.65, 1}}, {{0.1, 0.35}, {0.9, 0.35}}, {{0.1, 0.65}, {0.9, 0.65}}},
	'%': {{{0.85, 0}, {0.15, 1}}, {{0.15, 0.1}, {0.3, 0.1}, {0.3, 0.25}, {0.15, 0.25}, {0.15, 0.1}}, {{0.7, 0.75}, {0.85, 0.75}, {0.85, 0.9}, {0.7, 0.9}, {0.7, 0.75}}},
	'@': {{{0.65, 0.4}, {0.5, 0.35}, {0.4, 0.5}, {0.5, 0.65}, {0.65, 0.55}, {0.7, 0.7}, {0.9, 0.55}, {0.85, 0.2}, {0.5, 0.05}, {0.15, 0.25}, {0.1, 0.65}, {0.4, 0.95}, {0.8, 0.9}}},
}

var letterKeys = func() []byte {
	var ks []byte
	for k := range 256 {
		if _, ok := letterStrokes[byte(k)]; ok {
			ks = append(ks, byte(k))
		}
	}
	return ks
}()

// negative draws one picture of the given family. digit returns training digit i's pixels (rows x cols).
func negative(family string, rng *rand.Rand, digit func(i int) []byte, digits, rows, cols int) *canvas {
	n := 28 + int(180*rng.Float64()*rng.Float64())
	c := newCanvas(n)
	f := float64(n)
	pen := f * (0.04 + 0.1*rng.Float64())
	jitter := func(p [2]float64, box, x0, y0, amount float64) [2]float64 {
		return [2]float64{x0 + box*(p[0]+amount*(rng.Float64()-0.5)), y0 + box*(p[1]+amount*(rng.Float64()-0.5))}
	}
	switch family {
	case "font letter":
		c.text(string(gateLetters[rng.IntN(len(gateLetters))]), f*(0.45+0.45*rng.Float64()), rng)
	case "word":
		k := 2 + rng.IntN(3)
		var s []byte
		for range k {
			s = append(s, gateLetters[rng.IntN(len(gateLetters))])
		}
		c.text(string(s), f*(0.6+0.6*rng.Float64())/float64(k), rng)
	case "drawn letter":
		strokes := letterStrokes[letterKeys[rng.IntN(len(letterKeys))]]
		box := f * (0.5 + 0.35*rng.Float64())
		x0, y0 := (f-box)/2+f*0.1*(rng.Float64()-0.5), (f-box)/2+f*0.1*(rng.Float64()-0.5)
		aspect := 0.7 + 0.5*rng.Float64()
		pen = box * (0.05 + 0.1*rng.Float64())
		for _, s := range strokes {
			var pts [][2]float64
			for _, p := range s {
				q := jitter(p, box, x0, y0, 0.12)
				q[0] = f/2 + (q[0]-f/2)*aspect
				pts = append(pts, q)
			}
			c.poly(pts, pen, false)
		}
	case "several digits":
		k := 2 + rng.IntN(2)
		s := f / (float64(cols) * (float64(k)*0.8 + 0.3)) * (0.8 + 0.3*rng.Float64())
		overlap := -0.15 + 0.55*rng.Float64() // share of a digit's width the next one overlaps it by
		w := float64(cols) * s
		total := w * (float64(k) - overlap*float64(k-1))
		x := (f - total) / 2
		for range k {
			y := (f-float64(rows)*s)/2 + f*0.12*(rng.Float64()-0.5)
			c.paste(digit(rng.IntN(digits)), rows, cols, x, y, s)
			x += w * (1 - overlap)
		}
	case "scribble":
		pts := [][2]float64{{f * (0.2 + 0.6*rng.Float64()), f * (0.2 + 0.6*rng.Float64())}}
		for range 4 + rng.IntN(14) {
			p := pts[len(pts)-1]
			a := 2 * math.Pi * rng.Float64()
			r := f * (0.1 + 0.35*rng.Float64())
			pts = append(pts, [2]float64{min(max(p[0]+r*math.Cos(a), 0.05*f), 0.95*f), min(max(p[1]+r*math.Sin(a), 0.05*f), 0.95*f)})
		}
		c.poly(pts, pen*0.6, false)
	case "outline", "filled shape":
		sides := 3 + rng.IntN(6)
		star := rng.IntN(3) == 0
		cx, cy := f*(0.4+0.2*rng.Float64()), f*(0.4+0.2*rng.Float64())
		r := f * (0.2 + 0.25*rng.Float64())
		rot := 2 * math.Pi * rng.Float64()
		sx, sy := 0.6+0.4*rng.Float64(), 0.6+0.4*rng.Float64()
		var pts [][2]float64
		m := sides
		if star {
			m *= 2
		}
		for i := range m {
			rr := r
			if star && i%2 == 1 {
				rr *= 0.4
			}
			a := rot + 2*math.Pi*float64(i)/float64(m)
			pts = append(pts, [2]float64{cx + sx*rr*math.Cos(a), cy + sy*rr*math.Sin(a)})
		}
		if family == "filled shape" {
			c.fillPoly(pts)
			if rng.IntN(2) == 0 { // a second shape beside or over the first
				for i := range pts {
					pts[i][0] = f - pts[i][0]
				}
				c.fillPoly(pts)
			}
		} else {
			c.poly(pts, pen*0.7, true)
			if rng.IntN(3) == 0 { // with a diagonal or an inner line, as in diagrams
				c.line(pts[0][0], pts[0][1], pts[len(pts)/2][0], pts[len(pts)/2][1], pen*0.7)
			}
		}
	case "texture":
		switch rng.IntN(3) {
		case 0: // hatching or a grid
			step := f * (0.08 + 0.2*rng.Float64())
			a := math.Pi * rng.Float64()
			grid := rng.IntN(2) == 0
			for o := -f; o < 2*f; o += step {
				dx, dy := math.Cos(a), math.Sin(a)
				c.line(o*dy+f/2-f*dx, -o*dx+f/2-f*dy, o*dy+f/2+f*dx, -o*dx+f/2+f*dy, pen*0.4)
				if grid {
					c.line(-o*dx+f/2-f*dy, -o*dy+f/2+f*dx, -o*dx+f/2+f*dy, -o*dy+f/2-f*dx, pen*0.4)
				}
			}
		case 1: // blots and dots
			for range 5 + rng.IntN(40) {
				c.dot(f*rng.Float64(), f*rng.Float64(), f*(0.01+0.08*rng.Float64()))
			}
		default: // smooth blobs thresholded: stone, leaves, clouds
			k := 6 + rng.IntN(20)
			type bump struct{ x, y, r, w float64 }
			var bs []bump
			for range k {
				bs = append(bs, bump{f * rng.Float64(), f * rng.Float64(), f * (0.05 + 0.2*rng.Float64()), rng.Float64()*2 - 0.8})
			}
			th := 0.2 + 0.5*rng.Float64()
			for py := range n {
				for px := range n {
					var s float64
					for _, b := range bs {
						d := math.Hypot(float64(px)-b.x, float64(py)-b.y) / b.r
						s += b.w * math.Exp(-d*d)
					}
					c.v[py*n+px] = min(max((s-th)*4, 0), 1)
				}
			}
		}
	}
	return c
}

// upload turns a canvas of ink into an image as a user would send it: dark ink on light paper, or light on dark
// a third of the time, with grain, and as a JPEG a quarter of the time.
func (c *canvas) upload(rng *rand.Rand) image.Image {
	paper := 170 + 85*rng.Float64()
	ink := 90 * rng.Float64()
	if rng.IntN(3) == 0 {
		paper, ink = 255-paper, 255-ink
	}
	grain := 6 * rng.Float64()
	img := image.NewGray(image.Rect(0, 0, c.n, c.n))
	for i, v := range c.v {
		img.Pix[i] = uint8(min(max(paper+(ink-paper)*v+grain*rng.NormFloat64()+0.5, 0), 255))
	}
	if rng.IntN(4) != 0 {
		return img
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 50 + rng.IntN(45)}); err != nil {
		return img
	}
	j, err := jpeg.Decode(&buf)
	if err != nil {
		return img
	}
	return j
}

// digitUpload renders a training digit (rows x cols, ink bright on black) as an upload: as it is a third of the time,
// else scaled up with dark ink on paper, grain and sometimes JPEG, like the pictures the gate must let through.
func digitUpload(px []byte, rows, cols int, rng *rand.Rand) image.Image {
	if rng.IntN(3) == 0 {
		img := image.NewGray(image.Rect(0, 0, cols, rows))
		copy(img.Pix, px)
		return img
	}
	s := 1 + 6*rng.Float64()
	n := int(float64(max(rows, cols))*s*(1+0.6*rng.Float64())) + 1
	c := newCanvas(n)
	c.paste(px, rows, cols, (float64(n)-float64(cols)*s)*rng.Float64(), (float64(n)-float64(rows)*s)*rng.Float64(), s)
	return c.upload(rng)
}
