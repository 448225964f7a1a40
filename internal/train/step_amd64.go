package train

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vector loops of the optimizer steps; tests turn it off to cover the portable ones.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func adamAVX2(p, g, m, v []float32, b1, b2, ob1, ob2, lr, eps float32)

//go:noescape
func momentumAVX2(p, g, v []float32, mu, lr float32)

// adamVec runs the vector loop over the longest multiple of 8 and returns how many elements it did.
func adamVec(p, g, m, v []float32, b1, b2, lr, eps float32) int {
	if !hasAVX2 {
		return 0
	}
	n := len(p) &^ 7
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)] // bounds: the assembly trusts len(p)
	adamAVX2(p[:n], g, m, v, b1, b2, 1-b1, 1-b2, lr, eps)
	return n
}

func momentumVec(p, g, v []float32, mu, lr float32) int {
	if !hasAVX2 {
		return 0
	}
	n := len(p) &^ 7
	g, v = g[:len(p)], v[:len(p)]
	momentumAVX2(p[:n], g, v, mu, lr)
	return n
}
