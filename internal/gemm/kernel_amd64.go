package gemm

import "golang.org/x/sys/cpu"

// useAsm selects the packed assembly implementation. It requires AVX2 and FMA
// (and POPCNT, which every such CPU has; x/sys/cpu also checks that the operating system saves the YMM registers).
// Tests set it to false to exercise the gonum fallback.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasPOPCNT

// useAVX512 selects rowKernelList512 over rowKernelList (x/sys/cpu also checks that the operating system saves the
// ZMM registers). Tests set it to false to compare the two.
var useAVX512 = useAsm && cpu.X86.HasAVX512F

// Shape of the register tile computed by the micro-kernel.
const (
	mr = 6  // rows of C per micro-kernel call
	nr = 16 // columns of C per micro-kernel call
)

// kernel6x16 computes the mr×nr tile C = alpha*Ap*Bp + beta*C over kc steps.
// a points to a packed A micro-panel (mr values per step); b points to nr
// consecutive values per step, with bs elements between steps (nr for a
// packed panel, ldb when reading B in place); c points to the top-left of the
// tile, whose rows are ldc elements apart. beta == 0 overwrites C.
//
//go:noescape
func kernel6x16(kc int, a *float32, b *float32, bs int, c *float32, ldc int, alpha float32, beta float32)

// rowKernel computes c[j] = alpha*sum_p a[p*as]*b[p*ldb+j] + beta*c[j] for
// 0 <= j < n. k must be positive. Rows p where a[p*as] is zero are skipped.
//
//go:noescape
func rowKernel(k int, a *float32, as int, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)

// rowKernelList is rowKernel's loop over 64-column blocks, n a positive multiple of 64, taking only the cnt nonzero
// inputs vals, whose rows of B are idx (see nonzeros).
//
//go:noescape
func rowKernelList(cnt int, vals *float32, idx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)

// rowKernelList512 is rowKernelList in AVX-512 registers, bit for bit the same.
//
//go:noescape
func rowKernelList512(cnt int, vals *float32, idx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)

// rowKernelListNarrow is rowKernel's loops over 8-column groups and a masked tail, n below 64, over the list of the
// cnt nonzero inputs, vals and idx, and the same list ordered by byParity, the first even of them of even index.
//
//go:noescape
func rowKernelListNarrow(cnt int, vals *float32, idx *int32, even int, pvals *float32, pidx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)

// compressNonzero writes the nonzero values among a[:8*chunks] and their indices to vals and idx, which have room
// for 8*chunks values, and returns how many there are (see nonzeros).
//
//go:noescape
func compressNonzero(chunks int, a *float32, lut *[256][8]int32, vals *float32, idx *int32) int

// compressLUT[m] lists the lanes set in the mask m, in order: the permutation that moves a group's nonzero values to
// its front.
var compressLUT = func() (t [256][8]int32) {
	for m := range t {
		j := 0
		for lane := range int32(8) {
			if m&(1<<lane) != 0 {
				t[m][j] = lane
				j++
			}
		}
	}
	return t
}()

// dotRows computes c[j] = alpha*dot(a[:k], b[j*ldb:j*ldb+k]) + beta*c[j] for
// 0 <= j < n. k must be positive.
//
//go:noescape
func dotRows(k int, a *float32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)

// relu8 sets v[i] = max(v[i], 0) for 0 <= i < n, n a positive multiple of 8 (see ReLU).
//
//go:noescape
func relu8(n int, v *float32)
