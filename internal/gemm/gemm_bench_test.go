package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
)

// benchShape is one product shape from the perceptron workload.
type benchShape struct {
	transA, transB bool
	m, n, k        int
}

func (s benchShape) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m=%d,n=%d,k=%d", t(s.transA), t(s.transB), s.m, s.n, s.k)
}

// benchShapes are the products of a 784-128-64-10 perceptron: training at
// batch 64 (forward, weight gradient, backpropagated deltas) and inference at
// batch 1, 32 and 256.
var benchShapes = []benchShape{
	{false, false, 64, 128, 784}, // forward, first layer
	{true, false, 784, 128, 64},  // weight gradient of the first layer
	{false, true, 64, 784, 128},  // deltas back into a 784-wide layer (rare)
	{false, false, 64, 64, 128},  // forward, second layer
	{false, true, 64, 128, 64},   // deltas back through the second layer
	{false, false, 1, 128, 784},  // inference, one image
	{false, false, 1, 256, 784},
	{false, false, 32, 128, 784},
	{false, false, 32, 256, 784},
	{false, false, 256, 128, 784},
	{false, false, 256, 256, 784},
}

func benchGemm(b *testing.B, f gemmFunc) {
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			ar, ac := dims(s.transA, s.m, s.k)
			br, bc := dims(s.transB, s.k, s.n)
			rng := rand.New(rand.NewPCG(1, 1))
			a := randSlice(rng, ar*ac)
			bm := randSlice(rng, br*bc)
			c := make([]float32, s.m*s.n)
			b.ReportAllocs()
			for b.Loop() {
				f(s.transA, s.transB, s.m, s.n, s.k, 1, a, ac, bm, bc, 0, c, s.n)
			}
			flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm measures Sgemm, which may use several goroutines.
func BenchmarkSgemm(b *testing.B) { benchGemm(b, Sgemm) }

// BenchmarkSgemmSerial measures SgemmSerial on one goroutine.
func BenchmarkSgemmSerial(b *testing.B) { benchGemm(b, SgemmSerial) }

// BenchmarkGonum measures gonum's pure-Go Sgemm (the blas32 default
// implementation) on the same shapes. It parallelises internally when C has
// at least four 64×64 blocks.
func BenchmarkGonum(b *testing.B) {
	impl := gonum.Implementation{}
	benchGemm(b, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
		impl.Sgemm(toTranspose(transA), toTranspose(transB), m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
	})
}
