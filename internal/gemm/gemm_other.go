//go:build !amd64

package gemm

// useAsm is always false without amd64 assembly kernels; every product goes
// to gonum's pure-Go Sgemm.
var useAsm = false

func multiply(parallel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	fallback(parallel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func pair(m, k int, a []float32, lda int, b1 []float32, n1 int, c1 []float32, b2 []float32, n2 int, c2 []float32, beta float32) {
	panic("gemm: no assembly") // SgemmSerialPair computes the two products apart without it
}

func relu8(n int, v *float32) { panic("gemm: no assembly") }
