package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
)

// Accuracy: every element of C must agree with a float64 reference within
// tolRel times the sum of the magnitudes of the terms that make it up,
// |alpha|*sum_p |op(A)[i][p]|*|op(B)[p][j]| + |beta|*|C0[i][j]|. Single
// precision accumulation of up to a few thousand terms stays well inside it.
const tolRel = 1e-4

type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// testCase describes one product, including the padding of each leading
// dimension beyond the width of its matrix.
type testCase struct {
	transA, transB   bool
	m, n, k          int
	padA, padB, padC int
	alpha, beta      float32
	nanC             bool
	// sparseA zeroes about that fraction of A (half of them as -0), as the
	// background of an image does: the m == 1 path skips zero rows.
	sparseA float64
}

func (tc testCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d pad=%d,%d,%d alpha=%g beta=%g nanC=%v sparseA=%g",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.padA, tc.padB, tc.padC, tc.alpha, tc.beta, tc.nanC, tc.sparseA)
}

// dims returns the stored shape (rows, cols) of op(X) = X or Xᵀ.
func dims(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// sentinel fills the parts of C outside the m×n result, which must never be
// written.
const sentinel = float32(-12345.5)

func runCase(t *testing.T, f gemmFunc, tc testCase, rng *rand.Rand) {
	t.Helper()
	ar, ac := dims(tc.transA, tc.m, tc.k)
	br, bc := dims(tc.transB, tc.k, tc.n)
	lda, ldb, ldc := max(1, ac+tc.padA), max(1, bc+tc.padB), max(1, tc.n+tc.padC)
	a := randSlice(rng, max(0, (ar-1)*lda+ac))
	for i := range a {
		if rng.Float64() < tc.sparseA {
			a[i] = float32(math.Copysign(0, float64(a[i])))
		}
	}
	b := randSlice(rng, max(0, (br-1)*ldb+bc))
	// C gets a full last row of padding too, to detect writes past n.
	c := make([]float32, tc.m*ldc)
	for i := range c {
		c[i] = sentinel
	}
	c0 := make([]float32, len(c))
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			v := float32(rng.NormFloat64())
			if tc.nanC {
				v = float32(math.NaN())
			}
			c[i*ldc+j] = v
		}
	}
	copy(c0, c)

	f(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)

	opA := func(i, p int) float64 {
		if tc.transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	opB := func(p, j int) float64 {
		if tc.transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= tc.n {
				if got != sentinel {
					t.Fatalf("%v: C[%d][%d] outside the result was changed to %g", tc, i, j, got)
				}
				continue
			}
			var sum, mag float64
			for p := 0; p < tc.k; p++ {
				x, y := opA(i, p), opB(p, j)
				sum += x * y
				mag += math.Abs(x * y)
			}
			want := float64(tc.alpha) * sum
			mag *= math.Abs(float64(tc.alpha))
			if tc.beta != 0 {
				want += float64(tc.beta) * float64(c0[i*ldc+j])
				mag += math.Abs(float64(tc.beta) * float64(c0[i*ldc+j]))
			}
			if diff := math.Abs(float64(got) - want); !(diff <= tolRel*mag+1e-30) {
				if bad++; bad <= 5 {
					t.Errorf("%v: C[%d][%d] = %g, want %g (tolerance %g)", tc, i, j, got, want, tolRel*mag)
				}
			}
		}
	}
	if bad > 5 {
		t.Fatalf("%v: %d wrong elements", tc, bad)
	}
}

// setPath selects an implementation path for the duration of a test.
func setPath(t *testing.T, asm, direct bool, minFlops int) {
	t.Helper()
	oldAsm, oldDirect, oldFlops := useAsm, directB, parallelMinFlops
	t.Cleanup(func() { useAsm, directB, parallelMinFlops = oldAsm, oldDirect, oldFlops })
	useAsm = asm && oldAsm
	directB = direct
	parallelMinFlops = minFlops
}

type path struct {
	name     string
	asm      bool
	direct   bool
	minFlops int
}

// paths lists the implementation variants the correctness tests run on. A
// zero parallel threshold makes Sgemm split even tiny products, so that the
// splitting logic is exercised on ragged shapes.
var paths = []path{
	{"asm", true, true, 1 << 20},
	{"asm-packedB", true, false, 1 << 20},
	{"asm-alwaysParallel", true, true, 0},
	{"asm-packedB-alwaysParallel", true, false, 0},
	{"fallback", false, true, 1 << 20},
}

var funcs = []struct {
	name string
	f    gemmFunc
}{
	{"Sgemm", Sgemm},
	{"SgemmSerial", SgemmSerial},
}

var scalars = [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2.5, -1.5}, {1, 0.25}}

// shapes returns the product shapes covered for one transpose combination:
// every size from 1 to 70 in each dimension (with the other two drawn at
// random), a few random triples, and the perceptron shapes.
func shapes(rng *rand.Rand) [][3]int {
	var s [][3]int
	r := func() int { return 1 + rng.IntN(70) }
	for d := 1; d <= 70; d++ {
		s = append(s, [3]int{d, r(), r()}, [3]int{r(), d, r()}, [3]int{r(), r(), d})
	}
	s = append(s,
		[3]int{1, 1, 1}, [3]int{2, 2, 2}, [3]int{6, 16, 1}, [3]int{7, 17, 3},
		[3]int{64, 128, 784}, [3]int{784, 128, 64}, [3]int{64, 64, 128},
		[3]int{64, 10, 64}, [3]int{1, 128, 784}, [3]int{1, 256, 784},
		[3]int{1, 10, 64}, [3]int{1, 1000, 3}, [3]int{1, 7, 1000},
		[3]int{32, 256, 784}, [3]int{150, 70, 300}, [3]int{301, 1030, 20},
		[3]int{13, 1100, 530},
	)
	return s
}

func TestSgemm(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			setPath(t, p.asm, p.direct, p.minFlops)
			if p.asm && !useAsm {
				t.Skip("CPU lacks AVX2/FMA or not amd64")
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for _, fn := range funcs {
				for combo := 0; combo < 4; combo++ {
					for _, sh := range shapes(rng) {
						sc := scalars[rng.IntN(len(scalars))]
						tc := testCase{
							transA: combo&1 != 0, transB: combo&2 != 0,
							m: sh[0], n: sh[1], k: sh[2],
							padA: rng.IntN(4), padB: rng.IntN(4), padC: rng.IntN(4),
							alpha: sc[0], beta: sc[1],
						}
						tc.nanC = tc.beta == 0 && rng.IntN(2) == 0
						if rng.IntN(2) == 0 {
							tc.sparseA = []float64{0.3, 0.8, 1}[rng.IntN(3)]
						}
						// The large shapes are slow to check, especially
						// under the race detector; one entry point suffices.
						if sh[0]*sh[1]*sh[2] > 1<<20 && (testing.Short() || fn.name != "Sgemm") {
							continue
						}
						runCase(t, fn.f, tc, rng)
					}
				}
			}
		})
	}
}

// TestScalars covers every alpha/beta pair, including the special cases
// alpha == 0, k == 0 and beta == 0 with NaN in C, on all transpose
// combinations and every path.
func TestScalars(t *testing.T) {
	alphas := []float32{0, 1, -1, 0.5, 3}
	betas := []float32{0, 1, -1, 0.5, 2}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			setPath(t, p.asm, p.direct, p.minFlops)
			rng := rand.New(rand.NewPCG(3, 4))
			for _, fn := range funcs {
				for combo := 0; combo < 4; combo++ {
					for _, sh := range [][3]int{{1, 37, 19}, {13, 35, 0}, {13, 35, 21}, {1, 9, 0}} {
						for _, alpha := range alphas {
							for _, beta := range betas {
								for _, nan := range []bool{false, true} {
									if nan && beta != 0 {
										continue
									}
									runCase(t, fn.f, testCase{
										transA: combo&1 != 0, transB: combo&2 != 0,
										m: sh[0], n: sh[1], k: sh[2],
										padA: 1, padB: 2, padC: 3,
										alpha: alpha, beta: beta, nanC: nan,
									}, rng)
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, fn := range funcs {
		// m == 0 or n == 0 must not touch anything, even with nil slices.
		fn.f(false, false, 0, 5, 3, 1, nil, 3, make([]float32, 15), 5, 0, nil, 5)
		fn.f(true, true, 4, 0, 3, 1, make([]float32, 12), 4, nil, 3, 0, nil, 1)
		fn.f(false, false, 0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1)
	}
}

func TestPanics(t *testing.T) {
	a := make([]float32, 6) // 2×3
	b := make([]float32, 12)
	c := make([]float32, 8)
	cases := []struct {
		name string
		call func(f gemmFunc)
	}{
		{"m<0", func(f gemmFunc) { f(false, false, -1, 4, 3, 1, a, 3, b, 4, 0, c, 4) }},
		{"n<0", func(f gemmFunc) { f(false, false, 2, -1, 3, 1, a, 3, b, 4, 0, c, 4) }},
		{"k<0", func(f gemmFunc) { f(false, false, 2, 4, -1, 1, a, 3, b, 4, 0, c, 4) }},
		{"lda", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a, 2, b, 4, 0, c, 4) }},
		{"ldaT", func(f gemmFunc) { f(true, false, 2, 4, 3, 1, a, 1, b, 4, 0, c, 4) }},
		{"ldb", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a, 3, b, 3, 0, c, 4) }},
		{"ldbT", func(f gemmFunc) { f(false, true, 2, 4, 3, 1, a, 3, b, 2, 0, c, 4) }},
		{"ldc", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a, 3, b, 4, 0, c, 3) }},
		{"shortA", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a[:5], 3, b, 4, 0, c, 4) }},
		{"shortB", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a, 3, b[:11], 4, 0, c, 4) }},
		{"shortBT", func(f gemmFunc) { f(false, true, 2, 4, 3, 1, a, 3, b[:11], 3, 0, c, 4) }},
		{"shortC", func(f gemmFunc) { f(false, false, 2, 4, 3, 1, a, 3, b, 4, 0, c[:7], 4) }},
		{"shortAT", func(f gemmFunc) { f(true, false, 3, 4, 2, 1, a[:5], 3, b, 4, 0, c, 4) }},
	}
	for _, fn := range funcs {
		for _, tc := range cases {
			t.Run(fn.name+"/"+tc.name, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("no panic")
					}
				}()
				tc.call(fn.f)
			})
		}
	}
}

// TestConcurrent runs many products at once from several goroutines, each of
// which may itself go parallel, to let the race detector see the pooled
// scratch buffers and the row/column split in action.
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := 0; i < 6; i++ {
				tc := testCase{
					transA: i&1 != 0, transB: i&2 != 0,
					m: 20 + rng.IntN(60), n: 20 + rng.IntN(150), k: 100 + rng.IntN(200),
					alpha: 1, beta: 0.5,
				}
				runCase(t, Sgemm, tc, rng)
			}
		}(g)
	}
	wg.Wait()
}

// TestNoAllocs checks that serial calls reuse their packing buffers.
func TestNoAllocs(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly path")
	}
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	a := make([]float32, 64*784)
	b := make([]float32, 784*128)
	c := make([]float32, 64*128)
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}} {
		lda, ldb := 784, 128
		if tr[0] {
			lda = 64
		}
		if tr[1] {
			ldb = 784
		}
		for _, m := range []int{1, 64} {
			allocs := testing.AllocsPerRun(20, func() {
				SgemmSerial(tr[0], tr[1], m, 128, 784, 1, a, lda, b, ldb, 0, c, 128)
			})
			// A garbage collection may empty the pool once in a while, which
			// costs a few allocations spread over the runs.
			if allocs > 0.5 {
				t.Errorf("transA=%v transB=%v m=%d: %v allocs per call", tr[0], tr[1], m, allocs)
			}
		}
	}
}

// TestTheSplitDoesNotChangeTheResult checks that Sgemm gives bit for bit what SgemmSerial gives however it splits C
// across workers: each row of C must be computed the same way in every chunk (row by row or blocked, never a mix),
// or training would give other weights on another number of cores. Shapes include small sparse products (the row by
// row path) and row counts that leave a one-row chunk.
func TestTheSplitDoesNotChangeTheResult(t *testing.T) {
	if !useAsm {
		t.Skip("CPU lacks AVX2/FMA or not amd64")
	}
	setPath(t, true, true, 0)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	rng := rand.New(rand.NewPCG(7, 8))
	for _, m := range []int{2, 5, 7, 13, 16, 17, 61} {
		for _, sparse := range []float64{0, 0.8} {
			for _, transA := range []bool{false, true} {
				n, k := 128, 300
				a := randSlice(rng, m*k)
				for i := range a {
					if rng.Float64() < sparse {
						a[i] = 0
					}
				}
				lda := k
				if transA {
					lda = m
				}
				b := randSlice(rng, k*n)
				want, got := make([]float32, m*n), make([]float32, m*n)
				SgemmSerial(transA, false, m, n, k, 1, a, lda, b, n, 0, want, n)
				Sgemm(transA, false, m, n, k, 1, a, lda, b, n, 0, got, n)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("m=%d sparse=%v transA=%v: C[%d] = %v split, %v serial", m, sparse, transA, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestPairIsTwoSerialProductsBitForBit checks that SgemmSerialPair gives, for each of its two products, bit for bit
// what SgemmSerial gives alone: on real MNIST digits (mostly zero, so row by row over lists), dense rows (blocked, or
// scanned), rows with -0, NaN, infinities and subnormals, weights with infinities and NaN, widths that are and are
// not multiples of 64 (so one product is listed and the other scanned), each batch size up to past sixteen, and each
// kind of beta. Neither product may touch C past its own rows.
func TestPairIsTwoSerialProductsBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const k = 784
	set := mnisttest.Test(t)
	specials := []float32{float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, -1e-45}
	inputs := []struct {
		name string
		make func(m int) []float32
	}{
		{"digits", func(m int) []float32 {
			x := make([]float32, m*k)
			for i := range m {
				set.Inputs(x[i*k:(i+1)*k], rng.IntN(100))
			}
			return x
		}},
		{"dense", func(m int) []float32 { return randSlice(rng, m*k) }},
		{"sparse with special values", func(m int) []float32 {
			x := make([]float32, m*k)
			for i := range x {
				switch rng.IntN(10) {
				case 0:
					x[i] = specials[rng.IntN(len(specials))]
				case 1, 2:
					x[i] = float32(rng.NormFloat64())
				}
			}
			return x
		}},
	}
	same := func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || x != x && y != y }
	ms, betas := []int{1, 2, 3, 5, 7, 16, 17}, []float32{1, 0, 0.5}
	if testing.Short() {
		ms, betas = []int{1, 5, 16}, []float32{1, 0}
	}
	for _, in := range inputs {
		name, input := in.name, in.make
		for _, ns := range [][2]int{{128, 64}, {64, 128}, {64, 64}, {128, 128}, {100, 50}, {10, 200}, {192, 2}} {
			for _, m := range ms {
				for _, beta := range betas {
					a := input(m)
					b1, b2 := randSlice(rng, k*ns[0]), randSlice(rng, k*ns[1])
					for range 20 { // weights that a zero input must not turn into NaN, wherever rows are skipped
						b1[rng.IntN(len(b1))] = specials[1+rng.IntN(3)]
						b2[rng.IntN(len(b2))] = specials[1+rng.IntN(3)]
					}
					c1, c2 := randSlice(rng, m*ns[0]+5), randSlice(rng, m*ns[1]+5)
					want1, want2 := slices.Clone(c1), slices.Clone(c2)
					SgemmSerial(false, false, m, ns[0], k, 1, a, k, b1, ns[0], beta, want1, ns[0])
					SgemmSerial(false, false, m, ns[1], k, 1, a, k, b2, ns[1], beta, want2, ns[1])
					SgemmSerialPair(m, k, a, k, b1, ns[0], c1, b2, ns[1], c2, beta)
					for j := range c1 {
						if !same(c1[j], want1[j]) {
							t.Fatalf("%s n=%v m=%d beta=%v: C1[%d] = %v paired, %v alone", name, ns, m, beta, j, c1[j], want1[j])
						}
					}
					for j := range c2 {
						if !same(c2[j], want2[j]) {
							t.Fatalf("%s n=%v m=%d beta=%v: C2[%d] = %v paired, %v alone", name, ns, m, beta, j, c2[j], want2[j])
						}
					}
				}
			}
		}
	}
}

// TestReLUIsGosMax checks ReLU against Go's max(v, 0) bit for bit, on every length up to past two groups of eight
// (the assembly's groups and the tail) and on values around zero and at the edges: ±0, NaNs of both signs with
// payloads, infinities, subnormals, the largest and smallest normal values.
func TestReLUIsGosMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	edges := []uint32{0, 0x80000000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345, 0x7f800000, 0xff800000, 1, 0x80000001,
		0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000}
	for _, asm := range []bool{false, true} {
		for n := range 20 {
			for range 50 {
				v := make([]float32, n)
				for i := range v {
					if rng.IntN(2) == 0 {
						v[i] = math.Float32frombits(edges[rng.IntN(len(edges))])
					} else {
						v[i] = float32(rng.NormFloat64())
					}
				}
				want := make([]float32, n)
				for i, x := range v {
					want[i] = max(x, 0)
				}
				old := useAsm
				useAsm = asm && old
				ReLU(v)
				useAsm = old
				for i := range v {
					if math.Float32bits(v[i]) != math.Float32bits(want[i]) {
						t.Fatalf("asm %v, n=%d: ReLU gives %#x at %d, max %#x", asm, n, math.Float32bits(v[i]), i, math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}
