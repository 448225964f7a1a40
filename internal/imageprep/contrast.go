package imageprep

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
)

// contrast scales the ink so that its strength becomes 1, whatever the pen and the exposure, and zeroes the pixels
// within noiseFloor noise deviations of the background or under relFloor of the strength. The strength is a high
// percentile of the ink class (the pixels bg does not mark); the noise is the larger of two robust estimates of the
// background's standard deviation. It reports false, leaving ink as it was, when the ink is weaker than minContrast
// or than minSNR noise deviations: then there is no digit.
func (p *Preparer) contrast(ink []float32, bg []bool, noise float32) (digit bool) {
	sigma := max(noise, 1.4826*p.mad(ink, bg))
	strength := p.quantile(ink, func(i int) bool { return !bg[i] && ink[i] > noiseFloor*sigma }, 0.9)
	if strength < minContrast || strength < minSNR*sigma {
		return false
	}
	p.normalizeInk(ink, max(noiseFloor*sigma, relFloor*strength), strength)
	return true
}

// flatInk does polarity, background and contrast at once for a luminance v whose background is the single value
// back (see flatBackground): the ink is the distance from back towards the other end of the range, and there is no
// noise to allow for. It reports false when the ink is weaker than minContrast: then there is no digit.
func (p *Preparer) flatInk(v []float32, back float32) (ink []float32, digit bool) {
	p.ink = grow(p.ink, len(v))
	ink = p.ink
	if back >= 0.5 {
		for i, x := range v {
			ink[i] = max(back-x, 0)
		}
	} else {
		for i, x := range v {
			ink[i] = max(x-back, 0)
		}
	}
	// quantile(ink, ink[i] > 0, 0.9), without a call per pixel.
	sample := p.scratch[:0]
	for i := 0; i < len(ink); i += max(1, len(ink)/maxSample) {
		if ink[i] > 0 {
			sample = append(sample, ink[i])
		}
	}
	p.scratch = sample
	strength := quantileOf(sample, 0.9)
	if strength < minContrast {
		return ink, false
	}
	p.normalizeInk(ink, relFloor*strength, strength)
	return ink, true
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
