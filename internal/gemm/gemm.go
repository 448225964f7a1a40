package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C, where op(X) is X, or Xᵀ when
// the corresponding trans flag is set. All matrices are row-major: op(A) is
// m×k, op(B) is k×n and C is m×n, with leading dimensions lda, ldb and ldc.
// When beta is zero C is overwritten and its previous contents (even NaN) are
// ignored. Sgemm parallelises over up to runtime.GOMAXPROCS(0) goroutines when
// the product is large enough to pay for it, and runs serially otherwise.
//
// Sgemm panics if a dimension is negative, a leading dimension is too small,
// or a slice is too short for the dimensions given.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(true, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmSerial is Sgemm on the calling goroutine only, for callers that
// already run one goroutine per core.
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(false, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmSerialPair computes two products of the same untransposed A on the calling goroutine, C1 = A·B1 + beta·C1 and
// C2 = A·B2 + beta·C2, where A is m×k, B1 k×n1, B2 k×n2, C1 m×n1 and C2 m×n2, B and C without padding between
// rows (leading dimensions n1 and n2). Each result is bit for bit what SgemmSerial gives, with alpha 1; the work that
// depends on A alone, the lists of each row's nonzero inputs, is done once for both, which pays when A is mostly zero
// (two networks on the same digits).
//
// SgemmSerialPair panics if a dimension is negative, a leading dimension is too small, or a slice is too short.
func SgemmSerialPair(m, k int, a []float32, lda int, b1 []float32, n1 int, c1 []float32, b2 []float32, n2 int, c2 []float32, beta float32) {
	checkArgs(false, false, m, n1, k, a, lda, b1, n1, c1, n1)
	checkArgs(false, false, m, n2, k, a, lda, b2, n2, c2, n2)
	if !useAsm || m == 0 || n1 == 0 || n2 == 0 || k == 0 {
		SgemmSerial(false, false, m, n1, k, 1, a, lda, b1, n1, beta, c1, n1)
		SgemmSerial(false, false, m, n2, k, 1, a, lda, b2, n2, beta, c2, n2)
		return
	}
	pair(m, k, a, lda, b1, n1, c1, b2, n2, c2, beta)
}

// ReLU replaces every v[i] by max(v[i], 0), bit for bit as Go's max computes it: -0 becomes +0, and a NaN stays NaN
// (on amd64 with its sign bit cleared). It is the activation of a layer's outputs, eight at a time where the assembly path is available.
func ReLU(v []float32) {
	done := 0
	if useAsm {
		done = len(v) / 8 * 8
		if done > 0 {
			relu8(done, &v[0])
		}
	}
	for i := done; i < len(v); i++ {
		v[i] = max(v[i], 0)
	}
}

// Tuning knobs of the assembly path. They are variables so that the tests
// can drive every code path; the program itself never changes them.
var (
	// parallelMinFlops is the smallest product, in floating-point
	// operations (2*m*n*k), that Sgemm splits across goroutines. Below it
	// the cost of starting and joining goroutines exceeds what a second
	// core saves.
	parallelMinFlops = 2 << 20

	// directB reports whether full panels of an untransposed B are read in
	// place rather than packed.
	directB = true
)

func sgemm(parallel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if !useAsm {
		fallback(parallel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	multiply(parallel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkArgs panics, with the same checks and in the same order as gonum's
// Sgemm, if the arguments do not describe valid matrices.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 {
		panic("gemm: m < 0")
	}
	if n < 0 {
		panic("gemm: n < 0")
	}
	if k < 0 {
		panic("gemm: k < 0")
	}
	if transA {
		if lda < max(1, m) {
			panic("gemm: bad lda")
		}
	} else if lda < max(1, k) {
		panic("gemm: bad lda")
	}
	if transB {
		if ldb < max(1, k) {
			panic("gemm: bad ldb")
		}
	} else if ldb < max(1, n) {
		panic("gemm: bad ldb")
	}
	if ldc < max(1, n) {
		panic("gemm: bad ldc")
	}
	if m == 0 || n == 0 {
		return
	}
	if transA {
		if len(a) < (k-1)*lda+m {
			panic("gemm: insufficient length of a")
		}
	} else if len(a) < (m-1)*lda+k {
		panic("gemm: insufficient length of a")
	}
	if transB {
		if len(b) < (n-1)*ldb+k {
			panic("gemm: insufficient length of b")
		}
	} else if len(b) < (k-1)*ldb+n {
		panic("gemm: insufficient length of b")
	}
	if len(c) < (m-1)*ldc+n {
		panic("gemm: insufficient length of c")
	}
}

// scaleC sets C = beta*C; beta == 0 overwrites C with zeros.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

func toTranspose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Gonum's Sgemm runs serially when C has fewer than four 64×64 blocks, so
// the serial fallback hands it pieces of C no larger than this.
const (
	fallbackRows = 64
	fallbackCols = 192
)

// fallback computes the product with gonum's pure-Go Sgemm. For serial calls
// C is cut into pieces small enough that gonum does not start goroutines.
func fallback(parallel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl := gonum.Implementation{}
	tA, tB := toTranspose(transA), toTranspose(transB)
	if parallel {
		impl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := 0; i < m; i += fallbackRows {
		mi := min(fallbackRows, m-i)
		var ai []float32
		if transA {
			ai = a[i:]
		} else {
			ai = a[i*lda:]
		}
		for j := 0; j < n; j += fallbackCols {
			nj := min(fallbackCols, n-j)
			var bj []float32
			if transB {
				bj = b[j*ldb:]
			} else {
				bj = b[j:]
			}
			impl.Sgemm(tA, tB, mi, nj, k, alpha, ai, lda, bj, ldb, beta, c[i*ldc+j:], ldc)
		}
	}
}
