package gemm

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Cache blocking parameters. A packed kcMax×nr B micro-panel (16 KiB) stays
// in the 32 KiB L1 data cache while A micro-panels stream past it, and a
// packed mcMax×kcMax block of A (about 144 KiB) stays in L2. ncMax bounds
// the packed block of B (kcMax×ncMax, 1 MiB) that is shared by all row blocks.
const (
	kcMax = 256
	mcMax = 144
	ncMax = 1024
)

// scratch holds the packing buffers of one goroutine.
type scratch struct {
	a    []float32
	b    []float32
	vec  []float32
	idx  []int32 // the rows of B that nonzeros keeps, beside their values in vec
	pvec []float32
	pidx []int32 // vec and idx in the order of byParity
	tile [mr * nr]float32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// grow returns buf resized to n elements, reallocating only when it is too
// small, so that pooled buffers reach a steady state.
func grow[T float32 | int32](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// multiply computes the product with the assembly kernels, splitting C
// across goroutines when parallel is set and the product is large enough.
//
// C is cut into a few more chunks than there are workers, and each worker
// (the caller included) repeatedly claims the next unclaimed chunk. When a
// helper goroutine is slow to get a processor, for example because other
// work occupies the other cores, the caller simply processes more chunks
// itself instead of waiting for a fixed share to be done.
func multiply(parallel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	workers := 1
	if parallel && 2*m*n*k >= parallelMinFlops {
		workers = runtime.GOMAXPROCS(0)
	}
	// Whether rows go one by one is decided once for the whole product, never per chunk: a row's value then does not
	// depend on how C was split, so results are the same on any number of cores.
	rowwise := rowwise(transA, transB, m, k, a, lda)
	var byRows bool
	var step, chunks int
	switch {
	case workers > 1 && rowwise:
		// Rows only: a row's columns are summed in an order that depends on how many of them one call covers.
		byRows, step = true, (m+workers-1)/workers
		chunks = (m + step - 1) / step
	case workers > 1:
		byRows, step, chunks = split(transB, m, n, k, workers)
	}
	if chunks <= 1 {
		s := scratchPool.Get().(*scratch)
		serial(s, rowwise, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		scratchPool.Put(s)
		return
	}

	var next atomic.Int64
	work := func() {
		s := scratchPool.Get().(*scratch)
		for {
			i := int(next.Add(1) - 1)
			if i >= chunks {
				break
			}
			lo := i * step
			if byRows {
				hi := min(lo+step, m)
				var ai []float32
				if transA {
					ai = a[lo:]
				} else {
					ai = a[lo*lda:]
				}
				serial(s, rowwise, transA, transB, hi-lo, n, k, alpha, ai, lda, b, ldb, beta, c[lo*ldc:], ldc)
			} else {
				hi := min(lo+step, n)
				var bj []float32
				if transB {
					bj = b[lo*ldb:]
				} else {
					bj = b[lo:]
				}
				serial(s, rowwise, transA, transB, m, hi-lo, k, alpha, a, lda, bj, ldb, beta, c[lo:], ldc)
			}
		}
		scratchPool.Put(s)
	}
	helpers := min(workers, chunks) - 1
	var wg sync.WaitGroup
	wg.Add(helpers)
	for range helpers {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// packCost is the estimated cost of packing one element, in multiply-adds.
const packCost = 16

// chunksPerWorker is how many chunks of C each worker gets on average.
const chunksPerWorker = 2

// split decides how to divide C into chunks for workers: by rows (byRows)
// or by columns, in chunks of step rows or columns, whole micro-tiles wide.
// The choice minimises an estimate of the work of the busiest worker, which
// gets ceil(chunks/workers) chunks: their padded multiply-adds plus the
// packing that every chunk repeats (all of B when splitting by rows, unless B
// is read in place, and all of A when splitting by columns).
func split(transB bool, m, n, k, workers int) (byRows bool, step, chunks int) {
	tilesM := (m + mr - 1) / mr
	tilesN := (n + nr - 1) / nr
	want := workers * chunksPerWorker

	rowChunks := min(want, tilesM)
	rowStep := (tilesM + rowChunks - 1) / rowChunks * mr
	rowChunks = (m + rowStep - 1) / rowStep
	rowCost := rowStep * tilesN * nr * k
	if transB || !directB {
		rowCost += packCost * k * n
	}
	rowCost *= (rowChunks + workers - 1) / workers

	colChunks := min(want, tilesN)
	colStep := (tilesN + colChunks - 1) / colChunks * nr
	colChunks = (n + colStep - 1) / colStep
	colCost := tilesM*mr*colStep*k + packCost*m*k
	colCost *= (colChunks + workers - 1) / workers

	if rowCost <= colCost {
		return true, rowStep, rowChunks
	}
	return false, colStep, colChunks
}

// serial computes the product on the calling goroutine, one row of C at a time with vecMat when rowwise is set and
// blocked otherwise. m, n and k are positive and alpha is non-zero.
func serial(s *scratch, rowwise, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !rowwise {
		blocked(s, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := range m {
		var ai []float32 // row i of op(A)
		if transA {
			ai = a[i:]
		} else {
			ai = a[i*lda:]
		}
		vecMat(s, transA, transB, n, k, alpha, ai, lda, b, ldb, beta, c[i*ldc:])
	}
}

// rowsMaxM is the largest m that sparseRows considers computing row by row.
const rowsMaxM = 16

// sparseRows reports whether a small product is cheaper one row at a time, each row skipping the rows of B where its
// input is zero (rowKernel), than blocked, which reads all of B for every six rows of A whatever they hold. A row
// pass costs about its share of nonzero inputs, in units of a dense row pass; blocked costs about 2.5 + m/2 of those
// units for m up to 16 (BenchmarkForwardDigit in internal/model: a batch of two dense rows takes 3.2 row passes
// blocked, of sixteen 10.6). So a batch of inputs that are mostly background, like prepared digits, goes row by row
// at every m up to 16, and a dense batch only up to m = 4. The nonzeros are counted on every eighth element.
func sparseRows(transA bool, m, k int, a []float32, lda int) bool {
	const stride = 8
	limit := k * (25 + 4*m) / (10 * stride) // nonzeros allowed among the sampled elements
	nnz := 0
	for i := range m {
		// The count adds 0 or 1 without a branch: in a digit the zeros and nonzeros of the samples alternate in
		// no pattern a predictor could learn.
		if transA {
			for p := 0; p < k; p += stride {
				nnz += nonzero(a[p*lda+i])
			}
		} else {
			row := a[i*lda : i*lda+k]
			for p := 0; p < len(row); p += stride {
				nnz += nonzero(row[p])
			}
		}
		if nnz > limit {
			return false
		}
	}
	return true
}

// nonzero is 1 when v != 0 (v has bits other than the sign set, NaN included) and 0 otherwise.
func nonzero(v float32) int {
	return int((math.Float32bits(v)&0x7fffffff + 0x7fffffff) >> 31)
}

// vecMat computes the single row c = alpha*a*op(B) + beta*c, where a is row 0
// of op(A), without packing.
func vecMat(s *scratch, transA, transB bool, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32) {
	as := 1
	if transA {
		as = lda
	}
	if !transB {
		listed(s, listNonzeros(s, k, a, as), k, a, as, b, ldb, n, alpha, beta, c)
		return
	}
	if as != 1 && k > 1 {
		// dotRows wants a contiguous vector.
		s.vec = grow(s.vec, k)
		for p := range s.vec {
			s.vec[p] = a[p*as]
		}
		a = s.vec
	}
	dotRows(k, &a[0], &b[0], ldb, &c[0], n, alpha, beta)
}

// listNonzeros makes the list of the nonzero inputs of a (see nonzeros) and returns its length, or -1 when it made
// none (k too large for the kernels' int32 indices).
func listNonzeros(s *scratch, k int, a []float32, as int) int {
	if k > math.MaxInt32 {
		return -1
	}
	return nonzeros(s, k, a, as)
}

// listed computes the single row c = alpha*a*B + beta*c, given cnt, what listNonzeros returned for a.
//
// The kernels read the list of the nonzero inputs: testing each input in every block of columns costs, on inputs
// that are mostly zero in runs (digits, ReLU outputs), a mispredicted branch at every change more than the
// multiply-adds skipped save. Each column is summed as rowKernel sums it, in 64-column blocks (rowKernelList) and
// then 8-column groups and a masked tail (rowKernelListNarrow), so the result is rowKernel's bit for bit. A row that
// is mostly nonzero is scanned after all: its branches are predictable, and the list's indirect loads would cost more
// than they save.
func listed(s *scratch, cnt, k int, a []float32, as int, b []float32, ldb, n int, alpha, beta float32, c []float32) {
	if cnt < 0 || 4*cnt > 3*k {
		rowKernel(k, &a[0], as, &b[0], ldb, &c[0], n, alpha, beta)
		return
	}
	wide := n / 64 * 64 // the columns done by rowKernelList
	switch {
	case wide == 0:
	case useAVX512:
		rowKernelList512(cnt, &s.vec[0], &s.idx[0], &b[0], ldb, &c[0], wide, alpha, beta)
	default:
		rowKernelList(cnt, &s.vec[0], &s.idx[0], &b[0], ldb, &c[0], wide, alpha, beta)
	}
	if wide < n {
		even, pvec, pidx := 0, &s.vec[0], &s.idx[0] // the tail alone reads only the list in order
		if n-wide >= 8 {
			even = byParity(s, cnt)
			pvec, pidx = &s.pvec[0], &s.pidx[0]
		}
		rowKernelListNarrow(cnt, &s.vec[0], &s.idx[0], even, pvec, pidx, &b[wide], ldb, &c[wide], n-wide, alpha, beta)
	}
}

// byParity copies the list of the cnt nonzero inputs in s.vec and s.idx to s.pvec and s.pidx, those of even index
// first, each part in the list's order, and returns how many have an even index. It does not branch on the
// indices.
func byParity(s *scratch, cnt int) int {
	s.pvec, s.pidx = grow(s.pvec, max(cnt, 1)), grow(s.pidx, max(cnt, 1))
	idx, vec := s.idx[:cnt], s.vec[:cnt]
	pvec, pidx := s.pvec[:cnt], s.pidx[:cnt]
	even := 0
	for _, p := range idx {
		even += int(^p & 1)
	}
	e, o := 0, even
	for i, p := range idx {
		odd := int(p & 1)
		j := e
		if odd != 0 {
			j = o
		}
		pvec[j], pidx[j] = vec[i], p
		e += 1 - odd
		o += odd
	}
	return even
}

// rowwise reports whether a product with the m x k matrix A goes row by row (a single row, or a few mostly-zero
// ones) rather than in blocks.
func rowwise(transA, transB bool, m, k int, a []float32, lda int) bool {
	return m == 1 || !transB && m <= rowsMaxM && sparseRows(transA, m, k, a, lda)
}

// pair computes C1 = A·B1 + beta·C1 and C2 = A·B2 + beta·C2 (see SgemmSerialPair) on the calling goroutine, each
// exactly as multiply would: the choice between rows and blocks depends on A alone, so it is made once, and so is
// each row's list of nonzero inputs.
func pair(m, k int, a []float32, lda int, b1 []float32, n1 int, c1 []float32, b2 []float32, n2 int, c2 []float32, beta float32) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	if !rowwise(false, false, m, k, a, lda) {
		blocked(s, false, false, m, n1, k, 1, a, lda, b1, n1, beta, c1, n1)
		blocked(s, false, false, m, n2, k, 1, a, lda, b2, n2, beta, c2, n2)
		return
	}
	for i := range m {
		ai := a[i*lda:]
		cnt := listNonzeros(s, k, ai, 1)
		listed(s, cnt, k, ai, 1, b1, n1, n1, 1, beta, c1[i*n1:])
		listed(s, cnt, k, ai, 1, b2, n2, n2, 1, beta, c2[i*n2:])
	}
}

// nonzeros lists in s.vec, in order of p, the inputs a[p*as] (0 <= p < k) that rowKernel does not skip, those with
// bits other than the sign set (NaN included, -0 not), and their indices p in s.idx, and returns how many there are.
// It does not branch on the values, so runs of zeros and nonzeros cost it the same.
func nonzeros(s *scratch, k int, a []float32, as int) int {
	s.vec, s.idx = grow(s.vec, k+8), grow(s.idx, k+8) // compressNonzero writes a whole group past the count
	vals, idx := s.vec, s.idx
	cnt, p := 0, 0
	if as == 1 {
		chunks := k / 8
		if chunks > 0 {
			cnt = compressNonzero(chunks, &a[0], &compressLUT, &vals[0], &idx[0])
		}
		p = chunks * 8
	}
	for ; p < k; p++ {
		v := a[p*as]
		vals[cnt], idx[cnt] = v, int32(p)
		if math.Float32bits(v)&0x7fffffff != 0 {
			cnt++
		}
	}
	return cnt
}

// blocked is the packed GotoBLAS-style product for m >= 2.
func blocked(s *scratch, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	// Split k and m into near-equal blocks so that no block is tiny.
	kBlocks := (k + kcMax - 1) / kcMax
	kc := (k + kBlocks - 1) / kBlocks
	mBlocks := (m + mcMax - 1) / mcMax
	mc := ((m+mBlocks-1)/mBlocks + mr - 1) / mr * mr

	s.a = grow(s.a, mc*kc)
	inPlace := directB && !transB
	for jc := 0; jc < n; jc += ncMax {
		nc := min(ncMax, n-jc)
		// With B read in place only a ragged last panel needs packing.
		packFrom := 0
		if inPlace {
			packFrom = nc / nr * nr
		}
		s.b = grow(s.b, (nc-packFrom+nr-1)/nr*nr*kc)

		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			betaBlk := beta
			if pc > 0 {
				betaBlk = 1
			}
			if packFrom < nc {
				packB(s.b, b, ldb, transB, pc, kcur, jc+packFrom, nc-packFrom)
			}
			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				packA(s.a, a, lda, transA, ic, mcur, pc, kcur)
				for jr := 0; jr < nc; jr += nr {
					ncur := min(nr, nc-jr)
					var bp *float32
					bs := nr
					if jr < packFrom {
						bp = &b[pc*ldb+jc+jr]
						bs = ldb
					} else {
						bp = &s.b[(jr-packFrom)*kcur]
					}
					for ir := 0; ir < mcur; ir += mr {
						mcurr := min(mr, mcur-ir)
						ap := &s.a[ir*kcur]
						ci := (ic+ir)*ldc + jc + jr
						if mcurr == mr && ncur == nr {
							kernel6x16(kcur, ap, bp, bs, &c[ci], ldc, alpha, betaBlk)
							continue
						}
						kernel6x16(kcur, ap, bp, bs, &s.tile[0], nr, alpha, 0)
						mergeTile(&s.tile, c[ci:], ldc, mcurr, ncur, betaBlk)
					}
				}
			}
		}
	}
}

// mergeTile sets the top-left rows×cols corner of C to t + beta*C, where t
// already holds alpha*A*B for that corner.
func mergeTile(t *[mr * nr]float32, c []float32, ldc, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		ti := t[i*nr : i*nr+cols]
		ci := c[i*ldc : i*ldc+cols]
		if beta == 0 {
			copy(ci, ti)
			continue
		}
		for j, v := range ti {
			ci[j] = v + beta*ci[j]
		}
	}
}
