package imageprep

import "math"

// removeBackground returns the ink: u less a smooth surface fitted to its background pixels (bg, which it refines),
// and the standard deviation of u's pixel noise (see pixelNoise).
//
// It fits, subtracts, and fits once more with the background pixels that the first fit revealed: uneven lighting can
// put a dim corner of the page on the ink side of a single global threshold. The second split is never closer than
// three noise deviations to the background, so on a page of pure noise the refit sees all of it rather than its
// lower half.
func (p *Preparer) removeBackground(u []float32, bg []bool, w, h int, light bool) (ink []float32, noise float32) {
	noise = p.pixelNoise(u, w, h)
	p.ink = grow(p.ink, len(u))
	ink = p.ink
	p.subtractBackground(ink, u, bg, w, h, light)
	lo, hi := minMax(ink)
	t := max(otsu(p.histogram(ink, lo, hi)), 3*noise)
	for i, x := range ink {
		bg[i] = x < t
	}
	p.subtractBackground(ink, u, bg, w, h, light)
	return ink, noise
}

// flatBackground reports whether most of v is one exact value at either end of the range, and which. Clean images
// (MNIST itself, rendered digits, canvas drawings) have such a background; they need no noise model and no fitted
// background, which is most of the work. The candidates are the first and the last pixel, two opposite corners,
// which a digit rarely covers both of.
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

// subtractBackground fits a smooth surface to u over the pixels bg marks and writes u minus the surface into dst.
// A quadratic surface follows uneven lighting (a gradient, a vignette); it is only used when it explains at least
// half of the background's variance, since otherwise a constant is as good and cannot overshoot. On paper (light is
// set) light multiplies the ink as much as the paper, so the difference is divided by the paper's brightness there:
// the result is how much darker than its surroundings a pixel is, in proportion, the same in a shadow as in the sun.
func (p *Preparer) subtractBackground(dst, u []float32, bg []bool, w, h int, light bool) {
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
		mask, row := bg[y*w:][:w], u[y*w:][:w]
		for x, ok := range mask {
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
