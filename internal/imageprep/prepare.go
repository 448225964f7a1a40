package imageprep

import (
	"fmt"
	"image"
	"math"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// workSide is the longest side of the working image of the mnist mode. A larger image is first area-averaged by an
// integer factor down to at most this size: every later step then costs the same whatever the upload's size, and a
// digit that fills a tenth of a 2000x2000 page is still 25 pixels tall, more than the 20 it ends up as.
const workSide = 256

// Thresholds of the mnist mode, on the 0..1 ink scale after background removal.
const (
	// minContrast is the least ink strength that counts as a digit. Paper texture and JPEG noise stay below it, so a
	// blank page comes out blank instead of as amplified noise.
	minContrast = 0.08
	// minSNR is the least ink strength in units of the background's noise (its robust standard deviation).
	minSNR = 6
	// noiseFloor is how many noise standard deviations a pixel must rise above the background to count as ink.
	noiseFloor = 4
	// relFloor is the fraction of the ink strength below which a pixel counts as background all the same.
	relFloor = 0.05
	// minDigitShare is the least mass, as a fraction of the heaviest component's, that must remain besides ruled
	// lines, frames and boxes for them to be dropped: less than that is a stray mark, not the digit.
	minDigitShare = 0.25
	// minComponent drops connected specks whose ink mass is below this fraction of the heaviest component's, so that
	// a dust speck far from the digit does not stretch its bounding box.
	minComponent = 0.03
	// digitBox is MNIST's 20-pixel box in a 28-pixel field, as a fraction of the field.
	digitBox = 20.0 / 28.0
)

// Preparer turns decoded images into input vectors. It keeps scratch buffers from one call to the next, so after the
// first few images it allocates nothing. Its zero value is ready to use. A Preparer must not be used by two goroutines
// at once: give each worker its own, or use the package-level Prepare, which takes one from a pool.
type Preparer struct {
	sumY, sumA []uint64
	cell       []int32
	palY, palA [256]uint32
	lum, alpha []float32
	u, ink     []float32
	bg         []bool
	runs       []inkRun
	comps      []component
	patch, tmp []float32
	kx, ky     kernel
	scratch    []float32
	hist       [histBins]float64
	xpow       []float64
	dist       []float32
	png        pngDecoder
}

var pool = sync.Pool{New: func() any { return new(Preparer) }}

// Prepare is Preparer.Prepare with a Preparer from a pool.
func Prepare(dst []float32, img image.Image, in model.Input) error {
	p := pool.Get().(*Preparer)
	defer pool.Put(p)
	return p.Prepare(dst, img, in)
}

// PrepareBytes is Preparer.PrepareBytes with a Preparer from a pool.
func PrepareBytes(dst []float32, data []byte, lim Limits, in model.Input) (format string, err error) {
	p := pool.Get().(*Preparer)
	defer pool.Put(p)
	return p.PrepareBytes(dst, data, lim, in)
}

// PrepareBytes decodes data (see Decode) and prepares the image (see Prepare). format is the image's format once it
// was recognised, even if decoding then failed.
func (p *Preparer) PrepareBytes(dst []float32, data []byte, lim Limits, in model.Input) (format string, err error) {
	if int64(len(data)) <= lim.maxBytes() {
		if img, ok := p.png.decode(data, lim.maxPixels()); ok {
			return "png", p.Prepare(dst, img, in)
		}
	}
	img, format, err := Decode(data, lim)
	if err != nil {
		return format, err
	}
	return format, p.Prepare(dst, img, in)
}

// Prepare writes into dst the in.Width*in.Height input vector of img, row-major with values in 0..1, made the way
// in.Preprocess says (see the package documentation). dst must have exactly in.Width*in.Height elements. An image
// without a digit (a blank page) gives a vector of zeros in the mnist mode. The error is ErrUndecodable for an empty
// image, and otherwise reports an Input that no model file may hold.
func (p *Preparer) Prepare(dst []float32, img image.Image, in model.Input) error {
	if in.Width <= 0 || in.Height <= 0 || in.Width > 1<<14 || in.Height > 1<<14 {
		return fmt.Errorf("imageprep: invalid input size %dx%d", in.Width, in.Height)
	}
	if len(dst) != in.Width*in.Height {
		return fmt.Errorf("imageprep: dst has %d elements, want %dx%d", len(dst), in.Width, in.Height)
	}
	if img == nil || img.Bounds().Empty() {
		return fmt.Errorf("%w: empty image", ErrUndecodable)
	}
	switch in.Preprocess {
	case model.PreprocessMNIST:
		p.mnist(dst, img, in.Width, in.Height, true)
	case model.PreprocessResize:
		p.resize(dst, img, in.Width, in.Height)
	default:
		return fmt.Errorf("imageprep: unknown preprocessing %q", in.Preprocess)
	}
	return nil
}

// resize converts img to luminance (transparent pixels count as black, as with image/color's GrayModel) and resizes
// the whole of it to w x h.
func (p *Preparer) resize(dst []float32, img image.Image, w, h int) {
	b := img.Bounds()
	f := max(1, min(b.Dx()/w, b.Dy()/h))
	r := p.reduce(img, f)
	p.kx.set(w, 0, float64(b.Dx())/float64(f), r.ww, false)
	p.ky.set(h, 0, float64(b.Dy())/float64(f), r.wh, false)
	p.tmp = resample(dst, w, h, p.lum, r.ww, &p.kx, &p.ky, p.tmp)
	for i, v := range dst {
		dst[i] = min(max(v, 0), 1)
	}
}

// mnist makes img look like an MNIST digit; see the package documentation for the steps and why each exists. When
// refine is set and the digit turns out small in a large image, it starts again on a crop around the digit, at a
// finer working resolution.
func (p *Preparer) mnist(dst []float32, img image.Image, w, h int, refine bool) {
	clear(dst)
	b := img.Bounds()
	f := (max(b.Dx(), b.Dy()) + workSide - 1) / workSide
	r := p.reduce(img, f)
	ww, wh := r.ww, r.wh
	n := ww * wh

	// Luminance. A transparent background is composited over the colour that contrasts with the strokes, so a
	// canvas drawing in black or in white both come out as strokes on a plain background.
	v := p.lum
	if !r.opaque {
		back := float32(0)
		if r.meanInk < 0.5 {
			back = 1
		}
		for i := range n {
			v[i] += back * (1 - p.alpha[i])
		}
	}

	// Clean images (MNIST itself, rendered digits, canvas drawings) have a flat background: most pixels share one
	// exact value at an end of the range. They need no noise model and no background fit, which is most of the work.
	if back, ok := flatBackground(v[:n]); ok {
		p.ink = grow(p.ink, n)
		ink := p.ink
		if back >= 0.5 {
			for i, x := range v[:n] {
				ink[i] = max(back-x, 0)
			}
		} else {
			for i, x := range v[:n] {
				ink[i] = max(x-back, 0)
			}
		}
		s := p.scratch[:0]
		for i := 0; i < n; i += max(1, n/maxSample) {
			if ink[i] > 0 {
				s = append(s, ink[i])
			}
		}
		p.scratch = s
		strength := quantileOf(s, 0.9)
		if strength < minContrast {
			return
		}
		p.normalizeInk(ink, relFloor*strength, strength)
		p.finish(dst, img, w, h, ink, ww, wh, f, refine)
		return
	}

	// Polarity: u is the ink strength, 0 for the background.
	t := otsu(p.histogram(v, 0, 1))
	lightBG := lightBackground(v, ww, wh, t)
	p.u = grow(p.u, n)
	p.bg = grow(p.bg, n)
	u := p.u
	for i, x := range v {
		if lightBG {
			u[i], p.bg[i] = 1-x, x >= t
		} else {
			u[i], p.bg[i] = x, x < t
		}
	}

	// Background: fit, subtract, and refit once more with the background pixels that the first fit revealed (uneven
	// lighting can put a dim corner of the page on the ink side of a single global threshold). The second split is
	// never closer than three noise deviations to the background, so on a page of pure noise the refit sees all of
	// it rather than its lower half.
	noise := p.pixelNoise(u, ww, wh)
	p.ink = grow(p.ink, n)
	ink := p.ink
	p.subtractBackground(ink, u, ww, wh, lightBG)
	lo, hi := minMax(ink)
	tr := max(otsu(p.histogram(ink, lo, hi)), 3*noise)
	for i, x := range ink {
		p.bg[i] = x < tr
	}
	p.subtractBackground(ink, u, ww, wh, lightBG)

	// Contrast: the ink's strength is a high percentile of the ink class; the noise is the larger of two robust
	// estimates of the background's standard deviation. Too little of either means there is no digit.
	sigma := max(noise, 1.4826*p.mad(ink, p.bg))
	strength := p.quantile(ink, func(i int) bool { return !p.bg[i] && ink[i] > noiseFloor*sigma }, 0.9)
	if strength < minContrast || strength < minSNR*sigma {
		return
	}
	p.normalizeInk(ink, max(noiseFloor*sigma, relFloor*strength), strength)
	p.finish(dst, img, w, h, ink, ww, wh, f, refine)
}

// normalizeInk zeroes ink below floor and scales the rest so that strength becomes 1.
func (p *Preparer) normalizeInk(ink []float32, floor, strength float32) {
	inv := 1 / strength
	for i, x := range ink {
		if x < floor {
			ink[i] = 0
		} else {
			ink[i] = min(x*inv, 1)
		}
	}
}

// flatBackground reports whether most of v is one exact value at either end of the range, and which. The candidates
// are the four corners, which a digit rarely covers all of.
func flatBackground(v []float32) (float32, bool) {
	n := len(v)
	if n < 16 {
		return 0, false
	}
	for _, c := range [...]float32{v[0], v[n-1]} {
		if c > 0.02 && c < 0.98 {
			continue
		}
		same := 0
		for _, x := range v {
			if x == c {
				same++
			}
		}
		if 2*same >= n {
			return c, true
		}
	}
	return 0, false
}

// finish drops specks, refines on a crop when the digit is small in a large image, brings the stroke width into
// MNIST's range, and fits what is left into dst.
func (p *Preparer) finish(dst []float32, img image.Image, w, h int, ink []float32, ww, wh, f int, refine bool) {
	b := img.Bounds()
	x0, y0, x1, y1, ok := p.keepComponents(ink, ww, wh)
	if !ok {
		return
	}
	if side := max(x1-x0, y1-y0); refine && f > 1 && 2*side < workSide {
		if sub, ok := img.(interface {
			SubImage(image.Rectangle) image.Image
		}); ok {
			m := side/4 + 1 // a margin of background keeps the border vote of the polarity step right
			crop := image.Rect((x0-m)*f, (y0-m)*f, (x1+m)*f, (y1+m)*f).Add(b.Min).Intersect(b)
			p.mnist(dst, sub.SubImage(crop), w, h, false)
			return
		}
	}
	x0, y0, x1, y1 = p.normalizeStroke(ink, ww, wh, x0, y0, x1, y1)
	p.fit(dst, w, h, ink, ww, wh, x0, y0, x1, y1)
}

// lightBackground decides which side of the threshold t is the background: the side that covers most of the border
// and most of the area, counted as two equal votes. The border alone is fooled by a tight crop whose strokes touch
// it, and the area alone by a bold digit filling its crop; it takes both at once (a thick stroke cropped to its own
// width) to fool the two together. A frame around a scan, or a margin around a screenshot, is a border of one
// colour around a different one: when the edge is all one side of t and the ring a sixteenth of the side further
// in is nearly all the other, the inner ring votes instead (twice at most).
func lightBackground(v []float32, w, h int, t float32) bool {
	light := 0
	for _, x := range v {
		if x >= t {
			light++
		}
	}
	d := max(1, min(w, h)/16)
	border := ringLight(v, w, h, 0, t)
	for k := 0; k < 2*d; k += d {
		inner := ringLight(v, w, h, k+d, t)
		if !(border >= 0.98 && inner <= 0.1 || border <= 0.02 && inner >= 0.9) {
			break
		}
		border = inner
	}
	return border+float64(light)/float64(len(v)) > 1
}

// ringLight is the fraction of the pixels on the rectangle inset k from the edges of the w x h image v that are at
// least t; the outermost ring when the image is too small for that inset.
func ringLight(v []float32, w, h, k int, t float32) float64 {
	if 2*k >= min(w, h) {
		k = 0
	}
	x0, y0, x1, y1 := k, k, w-1-k, h-1-k
	n, lit := 0, 0
	count := func(x float32) {
		n++
		if x >= t {
			lit++
		}
	}
	for x := x0; x <= x1; x++ {
		count(v[y0*w+x])
		if y1 > y0 {
			count(v[y1*w+x])
		}
	}
	for y := y0 + 1; y < y1; y++ {
		count(v[y*w+x0])
		if x1 > x0 {
			count(v[y*w+x1])
		}
	}
	return float64(lit) / float64(n)
}

// subtractBackground fits a smooth surface to u over the pixels p.bg marks and writes u minus the surface into dst.
// A quadratic surface follows uneven lighting (a gradient, a vignette); it is only used when it explains at least
// half of the background's variance, since otherwise a constant is as good and cannot overshoot. On paper (light is
// set) light multiplies the ink as much as the paper, so the difference is divided by the paper's brightness there:
// the result is how much darker than its surroundings a pixel is, in proportion, the same in a shadow as in the sun.
func (p *Preparer) subtractBackground(dst, u []float32, w, h int, light bool) {
	// The least-squares normal equations need the sums of X^a Y^b over the background (a+b <= 4) and of z X^a Y^b
	// (a+b <= 2); each row's sums over X are taken first, so a pixel costs nine additions.
	p.xpow = grow(p.xpow, 5*w)
	X1, X2, X3, X4 := p.xpow[:w], p.xpow[w:2*w], p.xpow[2*w:3*w], p.xpow[3*w:4*w]
	for x := range w {
		X := (2*float64(x)+1)/float64(w) - 1
		X1[x], X2[x], X3[x], X4[x] = X, X*X, X*X*X, X*X*X*X
	}
	var M [5][5]float64 // M[a][b] = sum of X^a Y^b
	var Z [3][3]float64 // Z[a][b] = sum of z X^a Y^b
	var sum2 float64
	for y := range h {
		Y := (2*float64(y)+1)/float64(h) - 1
		var m0, m1, m2, m3, m4, z0, z1, z2 float64
		bg, row := p.bg[y*w:][:w], u[y*w:][:w]
		for x, ok := range bg {
			if !ok {
				continue
			}
			z := float64(row[x])
			m0++
			m1 += X1[x]
			m2 += X2[x]
			m3 += X3[x]
			m4 += X4[x]
			z0 += z
			z1 += z * X1[x]
			z2 += z * X2[x]
			sum2 += z * z
		}
		yp := [5]float64{1, Y, Y * Y, Y * Y * Y, Y * Y * Y * Y}
		for b := range 5 {
			M[0][b] += m0 * yp[b]
			M[1][b] += m1 * yp[b]
			M[2][b] += m2 * yp[b]
			M[3][b] += m3 * yp[b]
			M[4][b] += m4 * yp[b]
		}
		for b := range 3 {
			Z[0][b] += z0 * yp[b]
			Z[1][b] += z1 * yp[b]
			Z[2][b] += z2 * yp[b]
		}
	}
	count, sum := M[0][0], Z[0][0]
	if count == 0 {
		copy(dst, u)
		return
	}
	mean := sum / count
	sseConst := sum2 - sum*mean
	// The basis is 1, X, Y, X^2, XY, Y^2, given by the powers of X and Y.
	const terms = 6
	ax := [terms]int{0, 1, 0, 2, 1, 0}
	by := [terms]int{0, 0, 1, 0, 1, 2}
	var A [terms * terms]float64
	var c [terms]float64
	for j := range terms {
		c[j] = Z[ax[j]][by[j]]
		for k := range terms {
			A[j*terms+k] = M[ax[j]+ax[k]][by[j]+by[k]]
		}
		A[j*terms+j] *= 1 + 1e-9 // a touch of ridge keeps a degenerate layout solvable
	}
	quad := false
	if count >= 64 && sseConst > 1e-9 {
		rhs := c
		if solve(A[:], c[:], terms) {
			var fitted float64
			for j := range terms {
				fitted += c[j] * rhs[j]
			}
			quad = sum2-fitted < 0.5*sseConst
		}
	}
	if !quad {
		c = [terms]float64{mean}
	}
	for y := range h {
		Y := (2*float64(y)+1)/float64(h) - 1
		row, out := u[y*w:][:w], dst[y*w:][:w]
		a0 := c[0] + c[2]*Y + c[5]*Y*Y
		a1 := c[1] + c[4]*Y
		if !quad {
			s := float32(min(max(a0, 0), 1))
			inv := 1 / max(1-s, 0.05)
			for x, z := range row {
				if light {
					out[x] = (z - s) * inv
				} else {
					out[x] = z - s
				}
			}
			continue
		}
		for x, z := range row {
			s := float32(min(max(a0+a1*X1[x]+c[3]*X2[x], 0), 1))
			if light {
				out[x] = (z - s) / max(1-s, 0.05)
			} else {
				out[x] = z - s
			}
		}
	}
}

// pixelNoise estimates the standard deviation of pixel noise from the median absolute difference of horizontal
// neighbours: ink edges and smooth lighting barely move the median, and unlike a split into background and ink it
// also works on a page with no ink at all.
func (p *Preparer) pixelNoise(u []float32, w, h int) float32 {
	if w < 2 {
		return 0
	}
	s := p.scratch[:0]
	for y := 0; y < h; y += max(1, h*w/maxSample) {
		row := u[y*w:][:w]
		for x := 1; x < w; x++ {
			s = append(s, float32(math.Abs(float64(row[x]-row[x-1]))))
		}
	}
	p.scratch = s
	// For Gaussian noise of deviation sigma the difference has deviation sigma*sqrt(2), and its absolute value a
	// median of 0.6745 times that.
	return selectK(s, len(s)/2) / (0.6745 * math.Sqrt2)
}

// solve solves the n x n system A x = b in place by Gaussian elimination with partial pivoting, leaving x in b. It
// reports false for a singular system.
func solve(A, b []float64, n int) bool {
	for col := range n {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(A[r*n+col]) > math.Abs(A[piv*n+col]) {
				piv = r
			}
		}
		if math.Abs(A[piv*n+col]) < 1e-12 {
			return false
		}
		if piv != col {
			for k := range n {
				A[col*n+k], A[piv*n+k] = A[piv*n+k], A[col*n+k]
			}
			b[col], b[piv] = b[piv], b[col]
		}
		for r := col + 1; r < n; r++ {
			m := A[r*n+col] / A[col*n+col]
			for k := col; k < n; k++ {
				A[r*n+k] -= m * A[col*n+k]
			}
			b[r] -= m * b[col]
		}
	}
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < n; k++ {
			s -= A[r*n+k] * b[k]
		}
		b[r] = s / A[r*n+r]
	}
	return true
}

// keepComponents finds the 8-connected groups of ink pixels, erases those much lighter than the heaviest (specks of
// noise or dust), and returns the bounding box [x0, x1) x [y0, y1) of what is left.
//
// It labels runs rather than pixels: each row's horizontal runs of ink are joined (union-find) with the runs of the
// row above that touch them, diagonals included. A digit is a few dozen runs, so the work is one pass over the
// pixels to find the runs and a little per run, with no per-pixel neighbour checks.
func (p *Preparer) keepComponents(ink []float32, w, h int) (x0, y0, x1, y1 int, ok bool) {
	runs := p.runs[:0]
	above := 0 // first run of the previous row
	for y := range h {
		row := ink[y*w:][:w]
		here := len(runs)
		j := above // runs of the previous row are sorted by x: j walks them once per row
		for x := 0; x < w; {
			if row[x] == 0 {
				x++
				continue
			}
			a := x
			var m float64
			for ; x < w && row[x] != 0; x++ {
				m += float64(row[x])
			}
			id := int32(len(runs))
			runs = append(runs, inkRun{y: int32(y), x0: int32(a), x1: int32(x), parent: id, mass: m})
			// A run of the row above touches [a, x) diagonally when it overlaps [a-1, x+1).
			for j < here && int(runs[j].x1) < a {
				j++
			}
			for k := j; k < here && int(runs[k].x0) <= x; k++ {
				union(runs, id, int32(k))
			}
			// The last run touched may reach past this one and touch the next run of this row as well.
			for j < here && int(runs[j].x1) <= x {
				j++
			}
		}
		above = here
	}
	p.runs = runs
	if len(runs) == 0 {
		return 0, 0, 0, 0, false
	}
	// Component masses gather at the roots; find also leaves every run pointing straight at its root.
	for i := range runs {
		runs[find(runs, int32(i))].total += runs[i].mass
	}
	var heaviest float64
	for i := range runs {
		if runs[i].parent == int32(i) {
			heaviest = max(heaviest, runs[i].total)
		}
	}
	if heaviest == 0 {
		return 0, 0, 0, 0, false
	}
	// Rules (ruled lines, frames, boxes) go when something else of weight remains: then that is the digit.
	ref := heaviest
	if rules, rest := p.findRules(w, h); rules && rest >= minDigitShare*heaviest {
		ref = rest
	} else {
		for i := range p.comps {
			p.comps[i].rule = false
		}
	}
	x0, y0, x1, y1 = w, h, 0, 0
	for i := range runs {
		r := &runs[i]
		if c := &p.comps[runs[r.parent].comp]; c.rule || runs[r.parent].total < minComponent*ref {
			clear(ink[int(r.y)*w+int(r.x0) : int(r.y)*w+int(r.x1)])
			continue
		}
		x0, y0, x1, y1 = min(x0, int(r.x0)), min(y0, int(r.y)), max(x1, int(r.x1)), max(y1, int(r.y)+1)
	}
	return x0, y0, x1, y1, true
}

// inkRun is a horizontal run [x0, x1) of ink pixels in row y, a node of keepComponents' union-find.
type inkRun struct {
	y, x0, x1 int32
	parent    int32   // union-find parent; after find, the component's root
	comp      int32   // index of the component's shape in Preparer.comps, valid at its root
	mass      float64 // ink in this run
	total     float64 // ink in the component, valid at its root
}

// component is the shape of a connected group of ink: its bounding box [x0, x1) x [y0, y1), its pixels, and how
// many of them lie in a band along the box's edges.
type component struct {
	x0, y0, x1, y1 int32
	pixels, edge   int32
	mass           float64
	line, rule     bool
}

// findRules measures every component of p.runs (whose parents are their roots) and marks the rules: straight lines
// at least half the image long and ten times longer than thick (a ruled line, a form's underline), and outlines
// covering at least half the image both ways with nine tenths of their pixels near the edges of their box (a frame
// around a scan, a form field's box). A digit is neither: even a 1 is rarely ten times longer than thick, and a 0's
// curve leaves its box's sides. It reports whether there are rules, and the mass of the heaviest other component.
func (p *Preparer) findRules(w, h int) (rules bool, rest float64) {
	runs := p.runs
	comps := p.comps[:0]
	for i := range runs {
		root := &runs[runs[i].parent]
		if runs[i].parent == int32(i) {
			root.comp = int32(len(comps))
			comps = append(comps, component{x0: int32(w), y0: int32(h), mass: root.total})
		}
	}
	for i := range runs {
		r := &runs[i]
		c := &comps[runs[r.parent].comp]
		c.x0, c.x1 = min(c.x0, r.x0), max(c.x1, r.x1)
		c.y0, c.y1 = min(c.y0, r.y), max(c.y1, r.y+1)
		c.pixels += r.x1 - r.x0
	}
	for i := range runs {
		r := &runs[i]
		c := &comps[runs[r.parent].comp]
		t := max(1, min(c.x1-c.x0, c.y1-c.y0)/10)
		if r.y < c.y0+t || r.y >= c.y1-t {
			c.edge += r.x1 - r.x0
			continue
		}
		// The parts of the run within t of the box's left and right sides.
		c.edge += max(0, min(r.x1, c.x0+t)-r.x0) + max(0, r.x1-max(r.x0, c.x1-t, min(r.x1, c.x0+t)))
	}
	// Shapes first; then a line is only a rule if it is at least a quarter longer than the rest of the ink is wide
	// (or tall): a ruled line or an underline is; the top bar of a 5 drawn apart from its body, or a 1 next to a
	// stray dot, is not.
	var lines bool
	for i := range comps {
		c := &comps[i]
		bw, bh := int(c.x1-c.x0), int(c.y1-c.y0)
		box := 2*bw >= w && 2*bh >= h && 10*c.edge >= 9*c.pixels
		c.line = !box && (2*bw >= w && bw >= 10*bh || 2*bh >= h && bh >= 10*bw)
		c.rule = box || c.line
		lines = lines || c.line
		if !c.rule {
			rest = max(rest, c.mass)
		}
	}
	if lines {
		// The extent of the ink that is neither a rule nor a speck next to the heaviest such component.
		ex0, ey0, ex1, ey1 := int32(w), int32(h), int32(0), int32(0)
		for i := range comps {
			if c := &comps[i]; !c.rule && c.mass >= minComponent*rest {
				ex0, ey0, ex1, ey1 = min(ex0, c.x0), min(ey0, c.y0), max(ex1, c.x1), max(ey1, c.y1)
			}
		}
		for i := range comps {
			c := &comps[i]
			if !c.line {
				continue
			}
			long := c.x1-c.x0 >= 10*(c.y1-c.y0) && 4*(c.x1-c.x0) >= 5*max(ex1-ex0, 0) ||
				c.y1-c.y0 >= 10*(c.x1-c.x0) && 4*(c.y1-c.y0) >= 5*max(ey1-ey0, 0)
			if !long {
				c.line, c.rule = false, false
				rest = max(rest, c.mass)
			}
		}
	}
	for i := range comps {
		rules = rules || comps[i].rule
	}
	p.comps = comps
	return rules, rest
}

// find returns the root of run i's component, pointing every run on the way straight at it.
func find(runs []inkRun, i int32) int32 {
	r := i
	for runs[r].parent != r {
		r = runs[r].parent
	}
	for runs[i].parent != r {
		runs[i].parent, i = r, runs[i].parent
	}
	return r
}

// union joins the components of runs a and b under the older root, so roots stay the lowest index.
func union(runs []inkRun, a, b int32) {
	ra, rb := find(runs, a), find(runs, b)
	switch {
	case ra < rb:
		runs[rb].parent = ra
	case rb < ra:
		runs[ra].parent = rb
	}
}

// fit scales the ink in the box [x0, x1) x [y0, y1) of the w x h working image to fit MNIST's 20x20 box (scaled
// for other input sizes) keeping its aspect ratio, brightens it so its strongest pixel is 1, and places it in dst so
// that its centre of mass lands on the centre of the field, as MNIST's digits were made.
func (p *Preparer) fit(dst []float32, dw, dh int, ink []float32, w, h, x0, y0, x1, y1 int) {
	bw, bh := float64(x1-x0), float64(y1-y0)
	boxW, boxH := max(1, math.Round(digitBox*float64(dw))), max(1, math.Round(digitBox*float64(dh)))
	s := min(boxW/bw, boxH/bh)
	pw, ph := clamp(int(math.Round(bw*s)), 1, dw), clamp(int(math.Round(bh*s)), 1, dh)
	// Map a source interval of exactly pw/s around the box's centre, so rounding pw does not distort the aspect.
	cx, cy := float64(x0+x1)/2, float64(y0+y1)/2
	p.kx.set(pw, cx-float64(pw)/(2*s), float64(pw)/s, w, true)
	p.ky.set(ph, cy-float64(ph)/(2*s), float64(ph)/s, h, true)
	p.patch = grow(p.patch, pw*ph)
	patch := p.patch
	p.tmp = resample(patch, pw, ph, ink, w, &p.kx, &p.ky, p.tmp)

	var peak, mass, mx, my float64
	for i, v := range patch {
		peak = max(peak, float64(v))
		mass += float64(v)
		mx += float64(v) * float64(i%pw)
		my += float64(v) * float64(i/pw)
	}
	if mass == 0 {
		return
	}
	gain := float32(1 / peak)
	// MNIST's centres of mass sit at pixel index 14 (the mean over its test set is 14.0, 14.0), that is, the centre of
	// the field measured in pixel indexes rather than pixel centres.
	ox := clamp(int(math.Round(float64(dw)/2-mx/mass)), 0, dw-pw)
	oy := clamp(int(math.Round(float64(dh)/2-my/mass)), 0, dh-ph)
	for y := range ph {
		out := dst[(oy+y)*dw+ox:][:pw]
		for x, v := range patch[y*pw:][:pw] {
			out[x] = min(v*gain, 1)
		}
	}
}

// histBins is the resolution of the histograms behind thresholds and quantiles.
const histBins = 256

// histogram counts values into histBins bins spanning [lo, hi] and returns the bins together with the span, for
// otsu to turn a bin back into a value.
func (p *Preparer) histogram(v []float32, lo, hi float32) hist {
	clear(p.hist[:])
	scale := float32(histBins) / max(hi-lo, 1e-6)
	for _, x := range v {
		p.hist[clamp(int((x-lo)*scale), 0, histBins-1)]++
	}
	return hist{&p.hist, lo, hi}
}

type hist struct {
	bins   *[histBins]float64
	lo, hi float32
}

// otsu returns the threshold that splits the histogram into the two classes of least within-class variance (Otsu's
// method): values at or above it form the upper class.
func otsu(h hist) float32 {
	var total, sumAll float64
	for i, c := range h.bins {
		total += c
		sumAll += float64(i) * c
	}
	best, bestVar := 0, -1.0
	var w0, sum0 float64
	for i, c := range h.bins[:histBins-1] {
		w0 += c
		sum0 += float64(i) * c
		w1 := total - w0
		if w0 == 0 || w1 == 0 {
			continue
		}
		d := sum0/w0 - (sumAll-sum0)/w1
		if bv := w0 * w1 * d * d; bv > bestVar {
			best, bestVar = i, bv
		}
	}
	return h.lo + (h.hi-h.lo)*float32(best+1)/histBins
}

func minMax(v []float32) (lo, hi float32) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// maxSample caps the values a quantile is estimated from; beyond it an evenly spaced sample is as good and cheaper.
const maxSample = 1 << 14

// quantile returns the q-quantile of the values v[i] for which keep(i) holds, or 0 when there are none, from at most
// about maxSample of them.
func (p *Preparer) quantile(v []float32, keep func(int) bool, q float64) float32 {
	s := p.scratch[:0]
	step := max(1, len(v)/maxSample)
	for i := 0; i < len(v); i += step {
		if keep(i) {
			s = append(s, v[i])
		}
	}
	p.scratch = s
	return quantileOf(s, q)
}

// quantileOf returns the q-quantile of s, or 0 when s is empty, reordering s.
func quantileOf(s []float32, q float64) float32 {
	if len(s) == 0 {
		return 0
	}
	return selectK(s, int(q*float64(len(s)-1)))
}

// mad returns the median absolute deviation from the median of the values v[i] where mask[i] is set.
func (p *Preparer) mad(v []float32, mask []bool) float32 {
	med := p.quantile(v, func(i int) bool { return mask[i] }, 0.5)
	s := p.scratch
	for i := range s {
		s[i] = float32(math.Abs(float64(s[i] - med)))
	}
	if len(s) == 0 {
		return 0
	}
	return selectK(s, (len(s)-1)/2)
}

// selectK returns the k-th smallest element of s (Hoare's quickselect, median-of-three pivots), reordering s.
func selectK(s []float32, k int) float32 {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s[mid] < s[lo] {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if s[hi] < s[lo] {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if s[hi] < s[mid] {
			s[hi], s[mid] = s[mid], s[hi]
		}
		pivot := s[mid]
		i, j := lo, hi
		for i <= j {
			for s[i] < pivot {
				i++
			}
			for s[j] > pivot {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k]
		}
	}
	return s[k]
}

// Gray returns the w x h vector v (values 0..1, row-major) as a grayscale image, to look at what a model is given.
func Gray(v []float32, w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range min(len(v), w*h) {
		g.Pix[i] = uint8(min(max(v[i], 0), 1)*255 + 0.5)
	}
	return g
}
