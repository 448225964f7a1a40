// The probabilities of a /predict answer, formatted as strconv formats them but without its general machinery.

package api

import (
	"math"
	"math/bits"
	"strconv"
)

// appendFloat appends v as strconv.AppendFloat(b, float64(v), 'g', 6, 32) does, byte for byte. A probability is a
// normal float32 in (0, 1], where that is cheap to do exactly: v = m·2^(e-23) with m below 2^24, so v·10^p for the p
// that leaves six digits before the point is m·5^p / 2^t, and m·5^p fits 128 bits down to the smallest normal
// float32 (p = 43). The six digits are its quotient, rounded half to even as strconv rounds. Anything else
// (zero, subnormals, values above 1, negatives, NaN) is strconv's.
func appendFloat(b []byte, v float32) []byte {
	const one = 0x3f800000 // math.Float32bits(1)
	fb := math.Float32bits(v)
	if fb-(1<<23) > one-(1<<23) { // zero or subnormal (wrapped around), above 1, negative or not a number
		return strconv.AppendFloat(b, float64(v), 'g', 6, 32)
	}
	m := uint64(fb&(1<<23-1) | 1<<23)
	e := int(fb>>23) - 127 // v = m·2^(e-23), with e in [-126, 0]
	// k is floor(log10(v)), or one less: floor(e·log10(2)) (78913/2^18 is log10(2) close enough for |e| <= 126).
	k := (e * 78913) >> 18
	p := 5 - k // v·10^p is in [10^5, 10^7)
	t := uint(23 - e - p)
	hi, lo := bits.Mul64(m, pow5[p].lo)
	hi += m * pow5[p].hi
	// q is floor(v·10^p); fhi:flo is the rest, a binary fraction with its point before the top bit of fhi.
	var q, fhi, flo uint64
	if t < 64 {
		q = lo>>t | hi<<(64-t)
		fhi = lo << (64 - t)
	} else {
		q = hi >> (t - 64)
		fhi, flo = hi<<(128-t)|lo>>(t-64), lo<<(128-t)
	}
	var up bool
	if q >= 1e6 { // seven digits: v was at least 10^(k+1), so one of them is rounded off too
		d := q % 10
		q /= 10
		k++
		up = d > 5 || d == 5 && (fhi|flo != 0 || q&1 == 1)
	} else {
		up = fhi > 1<<63 || fhi == 1<<63 && (flo != 0 || q&1 == 1)
	}
	if up {
		if q++; q == 1e6 {
			q, k = 1e5, k+1
		}
	}
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + q%10)
		q /= 10
	}
	nd := 6
	for d[nd-1] == '0' {
		nd--
	}
	if k < -4 { // exponent form, as 'g' writes numbers below 1e-4: d.ddddde-XX
		b = append(b, d[0])
		if nd > 1 {
			b = append(b, '.')
			b = append(b, d[1:nd]...)
		}
		return append(b, 'e', '-', byte('0'+(-k)/10), byte('0'+(-k)%10))
	}
	if k == 0 { // only 1 itself, or what rounds to it
		return append(b, '1')
	}
	b = append(b, "0.0000"[:1-k]...)
	return append(b, d[:nd]...)
}

// pow5 holds 5^p as 128 bits (hi, lo), for the p that appendFloat uses.
var pow5 = func() (t [44]struct{ hi, lo uint64 }) {
	t[0].lo = 1
	for p := 1; p < len(t); p++ {
		h, l := bits.Mul64(t[p-1].lo, 5)
		t[p].hi, t[p].lo = t[p-1].hi*5+h, l
	}
	return t
}()
