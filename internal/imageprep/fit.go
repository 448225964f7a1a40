package imageprep

import "math"

// digitBox is MNIST's 20-pixel box in a 28-pixel field, as a fraction of the field.
const digitBox = 20.0 / 28.0

// fit scales the ink in the box [x0, x1) x [y0, y1) of the w x h working image to fit MNIST's 20x20 box (scaled
// for other input sizes) keeping its aspect ratio, brightens it so its strongest pixel is 1, and places it in dst so
// that its centre of mass lands on the centre of the field, as MNIST's digits were made. It reports false, leaving
// dst as it was, when the box holds no ink.
func (p *Preparer) fit(dst []float32, dw, dh int, ink []float32, w, h, x0, y0, x1, y1 int) bool {
	s, pw, ph := fitSize(dw, dh, x1-x0, y1-y0)
	p.patch = grow(p.patch, pw*ph)
	patch := p.patch
	if s == 1 && pw == x1-x0 && ph == y1-y0 {
		// The box fits as it is (an MNIST digit's does). The kernels would map the interval [x0, x1) onto itself with
		// weights 1 and 0, so the patch is the box, exactly (TestFitAtScaleOneIsACopy).
		for y := range ph {
			copy(patch[y*pw:][:pw], ink[(y0+y)*w+x0:][:pw])
		}
	} else {
		// Map a source interval of exactly pw/s around the box's centre, so rounding pw does not distort the aspect.
		cx, cy := float64(x0+x1)/2, float64(y0+y1)/2
		p.kx.set(pw, cx-float64(pw)/(2*s), float64(pw)/s, w, true)
		p.ky.set(ph, cy-float64(ph)/(2*s), float64(ph)/s, h, true)
		p.tmp = resample(patch, pw, ph, ink, w, &p.kx, &p.ky, p.tmp)
	}

	var peak, mass, mx, my float64
	for y := range ph {
		for x, v := range patch[y*pw:][:pw] {
			if float64(v) > peak { // the values are not NaN, and not -0 (built from products of non-negative values)
				peak = float64(v)
			}
			mass += float64(v)
			mx += float64(v) * float64(x)
			my += float64(v) * float64(y)
		}
	}
	if mass == 0 {
		return false
	}
	gain, ox, oy := place(dw, dh, pw, ph, peak, mass, mx, my)
	for y := range ph {
		out := dst[(oy+y)*dw+ox:][:pw]
		for x, v := range patch[y*pw:][:pw] {
			out[x] = min(v*gain, 1)
		}
	}
	return true
}

// fitSize returns the scale s that fits a bw x bh box of ink to MNIST's box in a dw x dh field, and the size pw x ph
// of the patch it becomes.
func fitSize(dw, dh, bw, bh int) (s float64, pw, ph int) {
	boxW, boxH := max(1, math.Round(digitBox*float64(dw))), max(1, math.Round(digitBox*float64(dh)))
	s = min(boxW/float64(bw), boxH/float64(bh))
	return s, clamp(int(math.Round(float64(bw)*s)), 1, dw), clamp(int(math.Round(float64(bh)*s)), 1, dh)
}

// place returns the gain that brightens a pw x ph patch whose strongest value is peak to 1, and the offset in the
// dw x dh field that centres its mass, whose moments about the patch's origin are mx and my.
func place(dw, dh, pw, ph int, peak, mass, mx, my float64) (gain float32, ox, oy int) {
	// MNIST's centres of mass sit at pixel index 14 (the mean over its test set is 14.0, 14.0), that is, the centre of
	// the field measured in pixel indexes rather than pixel centres.
	ox = clamp(int(math.Round(float64(dw)/2-mx/mass)), 0, dw-pw)
	oy = clamp(int(math.Round(float64(dh)/2-my/mass)), 0, dh-ph)
	return float32(1 / peak), ox, oy
}
