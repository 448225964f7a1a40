//go:build !amd64

package train

var hasAVX2 = false

func adamVec(p, g, m, v []float32, b1, b2, lr, eps float32) int { return 0 }
func momentumVec(p, g, v []float32, mu, lr float32) int         { return 0 }
