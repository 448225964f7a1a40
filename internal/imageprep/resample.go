package imageprep

import "math"

// kernel holds, for each destination index along one axis, the source indexes and weights that make it.
type kernel struct {
	start []int     // first source index of each destination index
	n     []int     // number of taps of each destination index
	off   []int     // offset of each destination index's weights in w
	w     []float32 // weights, normalised to sum to 1 (or less, where taps fell outside the source and were dropped)
	raw   []float32 // scratch for one destination index
}

// set computes the kernel that maps the source interval [lo, lo+length) onto dn destination samples of a source of
// sn samples. Shrinking averages each destination sample's footprint exactly (a box filter: every source sample
// weighs by how much of it the footprint covers), which is what anti-aliases a downscale; enlarging interpolates
// linearly, since a box would only repeat samples. Taps outside [0, sn) are dropped when zero is set (the image is
// surrounded by background) and clamped to the edge otherwise.
func (k *kernel) set(dn int, lo, length float64, sn int, zero bool) {
	k.start = grow(k.start, dn)
	k.n = grow(k.n, dn)
	k.off = grow(k.off, dn)
	k.w = k.w[:0]
	scale := length / float64(dn) // source samples per destination sample
	for i := range dn {
		a := lo + float64(i)*scale
		b := a + scale
		raw := k.raw[:0]
		var first int // source index of raw[0]
		if scale > 1 {
			first = int(math.Floor(a))
			for j := first; j < int(math.Ceil(b)); j++ {
				cover := min(b, float64(j+1)) - max(a, float64(j))
				raw = append(raw, float32(cover/scale))
			}
		} else {
			c := (a+b)/2 - 0.5
			first = int(math.Floor(c))
			t := float32(c - float64(first))
			raw = append(raw, 1-t, t)
		}
		k.raw = raw
		k.off[i] = len(k.w)
		last := first + len(raw) - 1
		l, h := max(first, 0), min(last, sn-1)
		if l > h { // every tap is outside the source
			k.start[i], k.n[i] = 0, 0
			if !zero {
				var s float32
				for _, w := range raw {
					s += w
				}
				k.start[i], k.n[i] = clamp(first, 0, sn-1), 1
				k.w = append(k.w, s)
			}
			continue
		}
		k.start[i], k.n[i] = l, h-l+1
		k.w = append(k.w, raw[l-first:h-first+1]...)
		if !zero {
			ws := k.w[k.off[i]:]
			for _, w := range raw[:l-first] {
				ws[0] += w
			}
			for _, w := range raw[h-first+1:] {
				ws[len(ws)-1] += w
			}
		}
	}
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// resample writes into dst (dw x dh) the source region that kx and ky were set for, horizontally first into tmp,
// then vertically. It returns tmp, grown as needed, for reuse.
func resample(dst []float32, dw, dh int, src []float32, sw int, kx, ky *kernel, tmp []float32) []float32 {
	// Rows of the source that any destination row reads.
	r0, r1 := math.MaxInt, -1
	for i := range dh {
		if ky.n[i] > 0 {
			r0 = min(r0, ky.start[i])
			r1 = max(r1, ky.start[i]+ky.n[i]-1)
		}
	}
	clear(dst[:dw*dh])
	if r1 < r0 {
		return tmp
	}
	rows := r1 - r0 + 1
	tmp = grow(tmp, rows*dw)
	for y := range rows {
		row := src[(r0+y)*sw:][:sw]
		out := tmp[y*dw:][:dw]
		for x := range dw {
			var s float32
			taps := row[kx.start[x]:][:kx.n[x]]
			for j, w := range kx.w[kx.off[x]:][:kx.n[x]] {
				s += w * taps[j]
			}
			out[x] = s
		}
	}
	for y := range dh {
		out := dst[y*dw:][:dw]
		for j, w := range ky.w[ky.off[y]:][:ky.n[y]] {
			in := tmp[(ky.start[y]+j-r0)*dw:][:dw]
			for x, v := range in {
				out[x] += w * v
			}
		}
	}
	return tmp
}
