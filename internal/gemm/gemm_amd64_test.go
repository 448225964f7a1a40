package gemm

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
)

// TestSplit checks that the parallel split covers C exactly with chunks that
// are whole micro-tiles wide for the perceptron shapes.
func TestSplit(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly path")
	}
	for _, sh := range [][4]int{{64, 128, 784, 0}, {784, 128, 64, 0}, {64, 784, 128, 1}, {64, 128, 64, 1}, {32, 256, 784, 0}, {256, 128, 784, 0}, {7, 5, 3, 0}} {
		byRows, step, chunks := split(sh[3] == 1, sh[0], sh[1], sh[2], 2)
		unit, total := nr, sh[1]
		if byRows {
			unit, total = mr, sh[0]
		}
		if step%unit != 0 || step <= 0 || chunks < 1 || (chunks-1)*step >= total || chunks*step < total {
			t.Errorf("%v: split byRows=%v step=%d chunks=%d", sh, byRows, step, chunks)
		}
		t.Logf("%v: byRows=%v step=%d chunks=%d", sh, byRows, step, chunks)
	}
}

// TestListedRowsAreRowKernelBitForBit checks that a single row's product over the list of its nonzero inputs
// (nonzeros, rowKernelList, rowKernelListNarrow) gives bit for bit what rowKernel's scan of every input gives, on real
// MNIST digits (mostly zero, in runs), on dense random rows (which vecMat scans after all), and on dense and sparse
// rows with -0, NaN, infinities and subnormals, for widths that are and are not multiples of 64 or of 8 (down to
// one column), strided inputs (op(A) transposed) and each kind of beta.
func TestListedRowsAreRowKernelBitForBit(t *testing.T) {
	if !useAsm {
		t.Skip("CPU lacks AVX2/FMA or not amd64")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const k = 784
	set := mnisttest.Test(t)
	var rows [][]float32
	for i := range 20 {
		r := make([]float32, k)
		set.Inputs(r, i)
		rows = append(rows, r)
	}
	rows = append(rows, randSlice(rng, k), make([]float32, k))
	odd := randSlice(rng, k)
	specials := []float32{float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -1e-45, 0}
	for i := range odd {
		if rng.IntN(3) == 0 {
			odd[i] = specials[rng.IntN(len(specials))]
		}
	}
	sparseOdd := make([]float32, k) // mostly zero, as the list path takes, with the same special values
	for i := range sparseOdd {
		if rng.IntN(5) == 0 {
			sparseOdd[i] = odd[i]
		}
	}
	rows = append(rows, odd, sparseOdd)
	s := new(scratch)
	same := func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || x != x && y != y }
	for _, avx512 := range listKernels(t) {
		useAVX512 = avx512
		for ri, row := range rows {
			for _, n := range []int{64, 128, 130, 200, 63, 10, 2, 8, 17, 1} {
				for _, kk := range []int{k, k - 3, 64, 5} { // a tail after the groups of eight, a ReLU layer's width, no whole group
					for _, as := range []int{1, 3} {
						for _, beta := range []float32{0, 1, 0.5} {
							a := make([]float32, kk*as)
							for p := range kk {
								a[p*as] = row[p]
								if as > 1 {
									a[p*as+1] = float32(math.NaN()) // between the inputs: never read
								}
							}
							b := randSlice(rng, kk*n)
							c0 := randSlice(rng, n)
							want, got := slices.Clone(c0), slices.Clone(c0)
							rowKernel(kk, &a[0], as, &b[0], n, &want[0], n, 1.5, beta)
							vecMat(s, as != 1, false, n, kk, 1.5, a, as, b, n, beta, got)
							for j := range got {
								if !same(got[j], want[j]) {
									t.Fatalf("AVX-512 %v, row %d n=%d k=%d as=%d beta=%v: c[%d] = %v listed, %v scanned", avx512, ri, n, kk, as, beta, j, got[j], want[j])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestDigitBatchesGoRowByRow checks that batches of real MNIST digits up to sixteen, as /predict sends them to the
// digit network and to the gate's first layer (both 784 inputs), are computed row by row, each row over the list of
// its nonzero inputs, rather than blocked.
func TestDigitBatchesGoRowByRow(t *testing.T) {
	if !useAsm {
		t.Skip("CPU lacks AVX2/FMA or not amd64")
	}
	const k = 784
	set := mnisttest.Test(t)
	x := make([]float32, 16*k)
	for i := range 16 {
		set.Inputs(x[i*k:(i+1)*k], i)
	}
	for _, m := range []int{2, 4, 8, 16} {
		if !sparseRows(false, m, k, x, k) {
			t.Errorf("a batch of %d digits is computed blocked", m)
		}
	}
}

// TestListedRowsWithStrides checks the listed path where TestListedRowsAreRowKernelBitForBit does not reach: rows of
// B longer than n (ldb > n) with B cut right after the last column read, C inside a longer slice, few inputs (no
// whole group of eight, one, several), a negative alpha, and all-zero and one-nonzero rows. Each c[j] must be
// rowKernel's bit for bit and within rounding of a float64 sum, and C past n untouched.
func TestListedRowsWithStrides(t *testing.T) {
	if !useAsm {
		t.Skip("CPU lacks AVX2/FMA or not amd64")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	s := new(scratch)
	for _, avx512 := range listKernels(t) {
		useAVX512 = avx512
		for _, k := range []int{1, 7, 8, 9, 16, 17, 33, 100} {
			for _, n := range []int{64, 65, 127, 192} {
				for _, ldb := range []int{n, n + 5} {
					for _, nnz := range []int{0, 1, k / 4} {
						a := make([]float32, k)
						for range nnz {
							a[rng.IntN(k)] = float32(rng.NormFloat64())
						}
						b := randSlice(rng, (k-1)*ldb+n)
						c0 := randSlice(rng, n+3)
						want, got := slices.Clone(c0), slices.Clone(c0)
						const alpha, beta = -0.75, 0.5
						rowKernel(k, &a[0], 1, &b[0], ldb, &want[0], n, alpha, beta)
						vecMat(s, false, false, n, k, alpha, a, 1, b, ldb, beta, got[:n])
						for j := range got {
							if j >= n {
								if got[j] != c0[j] {
									t.Fatalf("k=%d n=%d ldb=%d nnz=%d: c[%d] past n written", k, n, ldb, nnz, j)
								}
								continue
							}
							if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
								t.Fatalf("k=%d n=%d ldb=%d nnz=%d: c[%d] = %v listed, %v scanned", k, n, ldb, nnz, j, got[j], want[j])
							}
							var sum, mag float64
							for p := range k {
								sum += float64(a[p]) * float64(b[p*ldb+j])
								mag += math.Abs(float64(a[p]) * float64(b[p*ldb+j]))
							}
							ref := alpha*sum + beta*float64(c0[j])
							if math.Abs(float64(got[j])-ref) > 1e-5*(mag+math.Abs(float64(c0[j]))+1) {
								t.Fatalf("k=%d n=%d ldb=%d nnz=%d: c[%d] = %v, float64 sum %v", k, n, ldb, nnz, j, got[j], ref)
							}
						}
					}
				}
			}
		}
	}
}

// listKernels returns the values of useAVX512 a test of the listed path runs with, the AVX2 kernel and, on a CPU
// that has it, the AVX-512 one, and restores useAVX512 when the test ends.
func listKernels(t *testing.T) []bool {
	old := useAVX512
	t.Cleanup(func() { useAVX512 = old })
	if !old {
		t.Log("no AVX-512: only the AVX2 list kernel is tested")
		return []bool{false}
	}
	return []bool{false, true}
}

// TestSparseRowsCountsEveryNonzeroSample checks sparseRows against a plain count of the sampled inputs that compare
// unequal to zero (NaN included, -0 not), for batches whose count of nonzero samples is just below, at and just above
// the limit, with the inputs in rows and in columns (op(A) transposed).
func TestSparseRowsCountsEveryNonzeroSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	values := []float32{1, -2, float32(math.NaN()), float32(math.Inf(-1)), 1e-45, float32(math.Copysign(0, -1)), 0}
	for _, m := range []int{1, 2, 5, 16} {
		for _, k := range []int{8, 9, 64, 784} {
			limit := k * (25 + 4*m) / 80
			samples := m * ((k + 7) / 8)
			for _, want := range []int{limit - 1, limit, limit + 1, samples} {
				if want < 0 || want > samples {
					continue
				}
				for _, transA := range []bool{false, true} {
					// want nonzero samples among m rows of k, everything else -0, +0 or (not sampled) anything.
					a := make([]float32, m*k)
					for i := range a {
						a[i] = values[rng.IntN(len(values))]
					}
					at := func(i, p int) *float32 {
						if transA {
							return &a[p*m+i]
						}
						return &a[i*k+p]
					}
					var sampled [][2]int
					for i := range m {
						for p := 0; p < k; p += 8 {
							sampled = append(sampled, [2]int{i, p})
							*at(i, p) = values[5+rng.IntN(2)]
						}
					}
					for _, j := range rng.Perm(len(sampled))[:want] {
						*at(sampled[j][0], sampled[j][1]) = values[rng.IntN(5)]
					}
					lda := k
					if transA {
						lda = m
					}
					if got := sparseRows(transA, m, k, a, lda); got != (want <= limit) {
						t.Errorf("m=%d k=%d transA=%v, %d nonzero samples, limit %d: sparseRows = %v", m, k, transA, want, limit, got)
					}
				}
			}
		}
	}
}
