package imageprep

import (
	"errors"
	"fmt"
	"image"
	"sync"
)

// Spec says which vector Prepare makes. A model file records one for its input layer, and the caller converts it:
// this package knows nothing of models, so preprocessing stays model-agnostic and the model never depends on image
// decoding.
type Spec struct {
	// Width and Height are the vector's size in pixels, each 1 to 16384; the vector is row-major.
	Width, Height int
	// Mode says how an image becomes the vector.
	Mode Mode
	// Channels is 1 (or 0, the same) for luminance, or 3 for colour, which only ModeResize makes: the vector is then
	// channel-planar (all red values row-major, then all green, then all blue), PyTorch's CHW layout.
	Channels int
}

// Size is the length of the vector spec describes: Width*Height*channels.
func (spec Spec) Size() int { return spec.Width * spec.Height * spec.channels() }

func (spec Spec) channels() int { return max(spec.Channels, 1) }

// Mode names a way of turning an image into a vector; see the package documentation.
type Mode string

const (
	// ModeMNIST makes any digit image look like an MNIST digit: ink bright on black, fitted to 20x20 and centred by
	// centre of mass in 28x28.
	ModeMNIST Mode = "mnist"
	// ModeResize converts to luminance and resizes the whole image to the vector's size, for photos.
	ModeResize Mode = "resize"
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
	levels     []byte
	colRun     []int32
	cand       []uint64
	rows, acc  []uint64
	tab        inkTable
	rgb        colourScratch
}

var pool = sync.Pool{New: func() any { return new(Preparer) }}

// Prepare is Preparer.Prepare with a Preparer from a pool.
func Prepare(dst []float32, img image.Image, spec Spec) error {
	p := pool.Get().(*Preparer)
	defer pool.Put(p)
	return p.Prepare(dst, img, spec)
}

// PrepareBytes is Preparer.PrepareBytes with a Preparer from a pool.
func PrepareBytes(dst []float32, data []byte, lim Limits, spec Spec) (format string, err error) {
	p := pool.Get().(*Preparer)
	defer pool.Put(p)
	return p.PrepareBytes(dst, data, lim, spec)
}

// PrepareBytes decodes data (see Decode) and prepares the image (see Prepare). format is the image's format once it
// was recognised, even if decoding then failed.
func (p *Preparer) PrepareBytes(dst []float32, data []byte, lim Limits, spec Spec) (format string, err error) {
	if int64(len(data)) <= lim.maxBytes() {
		if img, ok := p.png.decode(data, lim.maxPixels()); ok {
			return "png", p.Prepare(dst, img, spec)
		}
	}
	img, format, err := Decode(data, lim)
	if err != nil {
		return format, err
	}
	return format, p.Prepare(dst, img, spec)
}

// ErrNoDigit means the mnist mode found nothing that could be a digit: no ink, ink no stronger than the paper's
// noise, or a uniform or smoothly shaded picture. It is an answer, not a failure: dst holds a valid vector (all
// zeros), which a caller that only needs the vector (a training set's blank example) may use; a classifier should
// say "no digit" rather than classify it.
var ErrNoDigit = errors.New("imageprep: no digit found")

// Prepare writes into dst the spec.Size() input vector of img, row-major (channel-planar in colour) with values in
// 0..1, made the way spec.Mode says (see the package documentation). dst must have exactly spec.Size() elements. An image
// without a digit (a blank page) gives a vector of zeros and ErrNoDigit in the mnist mode (the resize mode, for
// photos, has no notion of ink and never says so). The error is ErrUndecodable for an empty image, and otherwise
// reports a Spec that no model file may hold.
func (p *Preparer) Prepare(dst []float32, img image.Image, spec Spec) error {
	if spec.Width <= 0 || spec.Height <= 0 || spec.Width > 1<<14 || spec.Height > 1<<14 {
		return fmt.Errorf("imageprep: invalid input size %dx%d", spec.Width, spec.Height)
	}
	if c := spec.Channels; c != 0 && c != 1 && (c != 3 || spec.Mode != ModeResize) {
		return fmt.Errorf("imageprep: %d channels in the %s mode; want 1, or 3 in the resize mode", c, spec.Mode)
	}
	if len(dst) != spec.Size() {
		return fmt.Errorf("imageprep: dst has %d elements, want %dx%dx%d", len(dst), spec.Width, spec.Height,
			spec.channels())
	}
	if img == nil || img.Bounds().Empty() {
		return fmt.Errorf("%w: empty image", ErrUndecodable)
	}
	switch spec.Mode {
	case ModeMNIST:
		handled, digit := p.mnistFast(dst, img, spec.Width, spec.Height) // an MNIST-like image (fastpath.go)
		if !handled {
			handled, digit = p.mnistAlpha(dst, img, spec.Width, spec.Height) // a small canvas drawing (fastpath.go)
		}
		if !handled {
			digit = p.mnist(dst, img, spec.Width, spec.Height, true)
		}
		if !digit {
			return ErrNoDigit
		}
	case ModeResize:
		if spec.Channels == 3 {
			p.resizeColour(dst, img, spec.Width, spec.Height) // colour.go
		} else {
			p.resize(dst, img, spec.Width, spec.Height)
		}
	default:
		return fmt.Errorf("imageprep: unknown preprocessing %q", spec.Mode)
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

// mnist makes img look like an MNIST digit. Each line is a step of the package documentation, in its order, and
// names the file it lives in. A step that finds no digit (a blank page) leaves dst all zeros, and mnist reports
// false. When refine is set and the digit turns out small in a large image, the steps run again on a crop around
// it, at a finer working resolution.
func (p *Preparer) mnist(dst []float32, img image.Image, w, h int, refine bool) (digit bool) {
	clear(dst)
	f := workFactor(img.Bounds())
	r := p.reduce(img, f) // 1. working size (luma.go)
	v := p.luminance(r)   // 2. luminance, compositing alpha (luma.go)
	ww, wh := r.ww, r.wh  // the working image's size, which every later step works at
	var ink []float32
	if back, flat := flatBackground(v); flat {
		ink, digit = p.flatInk(v, back) // 3 to 5 at once, on a clean image's flat background (contrast.go)
	} else {
		u, bg, light := p.polarity(v, ww, wh) // 3. polarity (polarity.go)
		var noise float32
		ink, noise = p.removeBackground(u, bg, ww, wh, light) // 4. background removal (background.go)
		digit = p.contrast(ink, bg, noise)                    // 5. contrast and noise (contrast.go)
	}
	if !digit {
		return false
	}
	x0, y0, x1, y1, ok := p.keepComponents(ink, ww, wh) // 6. specks and rules (components.go)
	if !ok {
		return false
	}
	if refine {
		if crop, ok := smallDigitCrop(img, f, x0, y0, x1, y1); ok {
			return p.mnist(dst, crop, w, h, false) // 6b. a small digit in a large image: again, closer (below)
		}
	}
	if p.inkDepth(ink, ww, x0, y0, x1, y1) > maxInkDepth { // 7. stroke width (stroke.go): a blot has no strokes
		return false
	}
	x0, y0, x1, y1 = p.normalizeStroke(ink, ww, wh, x0, y0, x1, y1) // 7. stroke width (stroke.go)
	return p.fit(dst, w, h, ink, ww, wh, x0, y0, x1, y1)            // 8, 9. crop, fit and centre (fit.go)
}

// smallDigitCrop returns the part of img around the digit whose box in the working image, reduced by f, is
// [x0, x1) x [y0, y1), when the digit is small in a large image: analysed again on that crop, it gets up to workSide
// pixels rather than a corner of the page's working size. ok is false when the digit is large enough already, or
// img cannot be cropped without a copy.
func smallDigitCrop(img image.Image, f, x0, y0, x1, y1 int) (crop image.Image, ok bool) {
	side := max(x1-x0, y1-y0)
	if f <= 1 || 2*side >= workSide {
		return nil, false
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, false
	}
	b := img.Bounds()
	m := side/4 + 1 // a margin of background keeps the border vote of the polarity step right
	return sub.SubImage(image.Rect((x0-m)*f, (y0-m)*f, (x1+m)*f, (y1+m)*f).Add(b.Min).Intersect(b)), true
}

// Gray returns the w x h vector v (values 0..1, row-major) as a grayscale image, to look at what a model is given.
func Gray(v []float32, w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range min(len(v), w*h) {
		g.Pix[i] = uint8(min(max(v[i], 0), 1)*255 + 0.5)
	}
	return g
}
