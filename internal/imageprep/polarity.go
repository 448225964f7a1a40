package imageprep

// polarity returns the ink strength u of the w x h luminance v, 0 for the background and 1 for the strongest ink
// whichever way round the upload has them, and bg, which marks the pixels on the background's side of an Otsu
// threshold. light reports a light background (paper), for removeBackground.
func (p *Preparer) polarity(v []float32, w, h int) (u []float32, bg []bool, light bool) {
	t := otsu(p.histogram(v, 0, 1))
	light = lightBackground(v, w, h, t)
	p.u = grow(p.u, len(v))
	p.bg = grow(p.bg, len(v))
	u, bg = p.u, p.bg
	for i, x := range v {
		if light {
			u[i], bg[i] = 1-x, x >= t
		} else {
			u[i], bg[i] = x, x < t
		}
	}
	return u, bg, light
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
