package gemm

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas/gonum"
)

// bestGflops returns the speed of the fastest of reps calls of f, which is a
// steadier figure than a mean on a machine shared with other work.
func bestGflops(s benchShape, f gemmFunc, reps int) float64 {
	ar, ac := dims(s.transA, s.m, s.k)
	br, bc := dims(s.transB, s.k, s.n)
	rng := rand.New(rand.NewPCG(1, 1))
	a := randSlice(rng, ar*ac)
	bm := randSlice(rng, br*bc)
	c := make([]float32, s.m*s.n)
	best := time.Hour
	for r := 0; r < reps; r++ {
		t0 := time.Now()
		f(s.transA, s.transB, s.m, s.n, s.k, 1, a, ac, bm, bc, 0, c, s.n)
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	return 2 * float64(s.m*s.n*s.k) / best.Seconds() / 1e9
}

// TestTune prints best-of-N speeds for the benchmark shapes on each path. It
// only runs when GEMM_TUNE is set in the environment.
func TestTune(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip()
	}
	impl := gonum.Implementation{}
	gon := func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
		impl.Sgemm(toTranspose(transA), toTranspose(transB), m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
	}
	for _, s := range benchShapes {
		reps := 300
		ser := bestGflops(s, SgemmSerial, reps)
		par := bestGflops(s, Sgemm, reps)
		directB = false
		packed := bestGflops(s, SgemmSerial, reps)
		directB = true
		g := bestGflops(s, gon, 30)
		t.Logf("%-28v serial %6.1f  par %6.1f  packedB %6.1f  gonum %6.1f", s, ser, par, packed, g)
	}
}

// TestTuneKernel measures the micro-kernel alone on data in L1.
func TestTuneKernel(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip()
	}
	a := make([]float32, 6*256)
	b := make([]float32, 16*256)
	c := make([]float32, 6*16)
	best := time.Hour
	for r := 0; r < 2000; r++ {
		t0 := time.Now()
		for i := 0; i < 100; i++ {
			kernel6x16(256, &a[0], &b[0], 16, &c[0], 16, 1, 1)
		}
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	t.Logf("kernel 6x16 kc=256 in L1: %.1f GFLOP/s", 100*2*6*16*256/best.Seconds()/1e9)
}

// TestTuneOverhead compares serial and forced-parallel times on small products.
func TestTuneOverhead(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip()
	}
	for _, s := range []benchShape{{false, false, 12, 32, 8}, {false, false, 64, 64, 128}, {false, true, 64, 128, 64}, {false, false, 32, 128, 784}, {false, false, 64, 128, 784}} {
		old := parallelMinFlops
		parallelMinFlops = 0
		reps := 2000
		par := bestGflops(s, Sgemm, reps)
		parallelMinFlops = old
		ser := bestGflops(s, SgemmSerial, reps)
		f := 2 * float64(s.m*s.n*s.k) / 1e3
		t.Logf("%-28v serial %8.2fus  forced-parallel %8.2fus", s, f/ser, f/par)
	}
}
