//go:build !amd64

package gemm

// useAsm is always false without amd64 assembly kernels; every product goes
// to gonum's pure-Go Sgemm.
var useAsm = false

func multiply(parallel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	fallback(parallel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
