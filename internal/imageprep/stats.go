package imageprep

import "math"

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
