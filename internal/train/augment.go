package train

import (
	"math"
	"math/rand/v2"
)

// Augmentation bounds: each training example is seen through a fresh random affine transform every epoch, within
// these ranges. They match how hand-written digits really vary (slant, size, position), so the network learns the
// digit rather than MNIST's exact framing, which also makes it more forgiving of uploads and canvas drawings.
const (
	augRotate = 12 * math.Pi / 180 // radians either way
	augScale  = 0.12               // ± relative size
	augShear  = 0.15               // ± horizontal shear
	augShift  = 2.5                // ± pixels
)

// augment writes a randomly transformed copy of the rows x cols image src of channels planes (bytes 0..255) into
// dst as values in 0..1. It maps every output pixel back into the source (inverse transform) and samples it
// bilinearly; outside the source it repeats the nearest edge pixel, which is the background for digits.
func augment(dst []float32, src []byte, rows, cols, channels int, rng *rand.Rand) {
	pm := func() float64 { return 2*rng.Float64() - 1 }
	theta, scale, shear, tx, ty := pm()*augRotate, 1+pm()*augScale, pm()*augShear, pm()*augShift, pm()*augShift
	// A colour image's planes move together.
	n := rows * cols
	for c := range channels {
		warp(dst[c*n:(c+1)*n], src[c*n:(c+1)*n], rows, cols, theta, scale, shear, tx, ty)
	}
}

// warp applies rotation theta, scaling, horizontal shear and a shift (tx, ty) about the image centre.
func warp(dst []float32, src []byte, rows, cols int, theta, scale, shear, tx, ty float64) {
	// Forward map: p' = S·R·H·(p - c) + c + t. Inverse: p = (S·R·H)⁻¹·(p' - c - t) + c.
	sin, cos := math.Sincos(theta)
	// M = scale · R · H with H = [[1, shear], [0, 1]].
	m00, m01 := scale*cos, scale*(cos*shear-sin)
	m10, m11 := scale*sin, scale*(sin*shear+cos)
	det := m00*m11 - m01*m10
	i00, i01, i10, i11 := m11/det, -m01/det, -m10/det, m00/det
	cx, cy := float64(cols-1)/2, float64(rows-1)/2

	at := func(x, y int) float64 {
		x = min(max(x, 0), cols-1)
		y = min(max(y, 0), rows-1)
		return float64(src[y*cols+x])
	}
	for y := range rows {
		dy := float64(y) - cy - ty
		for x := range cols {
			dx := float64(x) - cx - tx
			sx := i00*dx + i01*dy + cx
			sy := i10*dx + i11*dy + cy
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			v := (at(x0, y0)*(1-fx)+at(x0+1, y0)*fx)*(1-fy) + (at(x0, y0+1)*(1-fx)+at(x0+1, y0+1)*fx)*fy
			dst[y*cols+x] = float32(v * (1.0 / 255))
		}
	}
}
