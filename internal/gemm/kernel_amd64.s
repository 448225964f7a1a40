//go:build amd64

#include "textflag.h"

// maskTable holds eight all-ones words followed by eight zero words. Loading
// eight words starting at maskTable+4*(8-r) gives a VMASKMOVPS mask that
// selects the first r lanes of a YMM register.
DATA maskTable<>+0(SB)/4, $0xffffffff
DATA maskTable<>+4(SB)/4, $0xffffffff
DATA maskTable<>+8(SB)/4, $0xffffffff
DATA maskTable<>+12(SB)/4, $0xffffffff
DATA maskTable<>+16(SB)/4, $0xffffffff
DATA maskTable<>+20(SB)/4, $0xffffffff
DATA maskTable<>+24(SB)/4, $0xffffffff
DATA maskTable<>+28(SB)/4, $0xffffffff
DATA maskTable<>+32(SB)/4, $0
DATA maskTable<>+36(SB)/4, $0
DATA maskTable<>+40(SB)/4, $0
DATA maskTable<>+44(SB)/4, $0
DATA maskTable<>+48(SB)/4, $0
DATA maskTable<>+52(SB)/4, $0
DATA maskTable<>+56(SB)/4, $0
DATA maskTable<>+60(SB)/4, $0
GLOBL maskTable<>(SB), RODATA|NOPTR, $64

// One step of the 6x16 micro-kernel: two 8-wide vectors of the B row at DI,
// six broadcasts of the A column at SI, twelve FMAs into Y4..Y15.
#define STEP6x16(aoff) \
	VMOVUPS      (DI), Y0              \
	VMOVUPS      32(DI), Y1            \
	VBROADCASTSS (aoff+0)(SI), Y2      \
	VBROADCASTSS (aoff+4)(SI), Y3      \
	VFMADD231PS  Y0, Y2, Y4            \
	VFMADD231PS  Y1, Y2, Y5            \
	VFMADD231PS  Y0, Y3, Y6            \
	VFMADD231PS  Y1, Y3, Y7            \
	VBROADCASTSS (aoff+8)(SI), Y2      \
	VBROADCASTSS (aoff+12)(SI), Y3     \
	VFMADD231PS  Y0, Y2, Y8            \
	VFMADD231PS  Y1, Y2, Y9            \
	VFMADD231PS  Y0, Y3, Y10           \
	VFMADD231PS  Y1, Y3, Y11           \
	VBROADCASTSS (aoff+16)(SI), Y2     \
	VBROADCASTSS (aoff+20)(SI), Y3     \
	VFMADD231PS  Y0, Y2, Y12           \
	VFMADD231PS  Y1, Y2, Y13           \
	VFMADD231PS  Y0, Y3, Y14           \
	VFMADD231PS  Y1, Y3, Y15           \
	ADDQ         R8, DI

// The 64-column blocks of rowKernel and rowKernelList keep eight 8-wide sums in Y0..Y7 for the columns of C at DX:
// ZERO64 clears Y0..Y7, FMA64 adds Y8 times the 64 values of the row of B at R9, SCALE64 multiplies them by alpha
// (Y14), ADDC64 adds beta (Y15) times C, STORE64 writes them to C.
#define ZERO64 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

#define FMA64 \
	VFMADD231PS (R9), Y8, Y0 \
	VFMADD231PS 32(R9), Y8, Y1 \
	VFMADD231PS 64(R9), Y8, Y2 \
	VFMADD231PS 96(R9), Y8, Y3 \
	VFMADD231PS 128(R9), Y8, Y4 \
	VFMADD231PS 160(R9), Y8, Y5 \
	VFMADD231PS 192(R9), Y8, Y6 \
	VFMADD231PS 224(R9), Y8, Y7

#define SCALE64 \
	VMULPS Y14, Y0, Y0 \
	VMULPS Y14, Y1, Y1 \
	VMULPS Y14, Y2, Y2 \
	VMULPS Y14, Y3, Y3 \
	VMULPS Y14, Y4, Y4 \
	VMULPS Y14, Y5, Y5 \
	VMULPS Y14, Y6, Y6 \
	VMULPS Y14, Y7, Y7

#define ADDC64 \
	VFMADD231PS (DX), Y15, Y0 \
	VFMADD231PS 32(DX), Y15, Y1 \
	VFMADD231PS 64(DX), Y15, Y2 \
	VFMADD231PS 96(DX), Y15, Y3 \
	VFMADD231PS 128(DX), Y15, Y4 \
	VFMADD231PS 160(DX), Y15, Y5 \
	VFMADD231PS 192(DX), Y15, Y6 \
	VFMADD231PS 224(DX), Y15, Y7

#define STORE64 \
	VMOVUPS Y0, (DX) \
	VMOVUPS Y1, 32(DX) \
	VMOVUPS Y2, 64(DX) \
	VMOVUPS Y3, 96(DX) \
	VMOVUPS Y4, 128(DX) \
	VMOVUPS Y5, 160(DX) \
	VMOVUPS Y6, 192(DX) \
	VMOVUPS Y7, 224(DX)

// func kernel6x16(kc int, a *float32, b *float32, bs int, c *float32, ldc int, alpha float32, beta float32)
//
// kernel6x16 computes the 6x16 tile C = alpha*A*B + beta*C, where A is a
// packed micro-panel (six consecutive values per step of the kc dimension), B
// holds sixteen consecutive values per step with a stride of bs elements
// between steps, and C is row-major with leading dimension ldc. When beta is
// zero, C is only written, never read.
TEXT ·kernel6x16(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ bs+24(FP), R8
	SHLQ $2, R8
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9

	// Touch the C tile early so that its lines arrive during the loop.
	PREFETCHT0 (DX)
	LEAQ       (DX)(R9*1), R10
	PREFETCHT0 (R10)
	PREFETCHT0 (R10)(R9*1)
	LEAQ       (R10)(R9*2), R10
	PREFETCHT0 (R10)
	PREFETCHT0 (R10)(R9*1)
	PREFETCHT0 (R10)(R9*2)

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	CMPQ CX, $4
	JL   k1

k4:
	STEP6x16(0)
	STEP6x16(24)
	STEP6x16(48)
	STEP6x16(72)
	ADDQ $96, SI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  k4

k1:
	TESTQ CX, CX
	JE    store

k1loop:
	STEP6x16(0)
	ADDQ $24, SI
	DECQ CX
	JNZ  k1loop

store:
	VBROADCASTSS alpha+48(FP), Y0
	VMULPS       Y0, Y4, Y4
	VMULPS       Y0, Y5, Y5
	VMULPS       Y0, Y6, Y6
	VMULPS       Y0, Y7, Y7
	VMULPS       Y0, Y8, Y8
	VMULPS       Y0, Y9, Y9
	VMULPS       Y0, Y10, Y10
	VMULPS       Y0, Y11, Y11
	VMULPS       Y0, Y12, Y12
	VMULPS       Y0, Y13, Y13
	VMULPS       Y0, Y14, Y14
	VMULPS       Y0, Y15, Y15

	// beta == ±0 means C is overwritten without being read.
	MOVL  beta+52(FP), AX
	ANDL  $0x7fffffff, AX
	JEQ   overwrite

	VBROADCASTSS beta+52(FP), Y1
	VFMADD231PS  (DX), Y1, Y4
	VFMADD231PS  32(DX), Y1, Y5
	VMOVUPS      Y4, (DX)
	VMOVUPS      Y5, 32(DX)
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y1, Y6
	VFMADD231PS  32(DX), Y1, Y7
	VMOVUPS      Y6, (DX)
	VMOVUPS      Y7, 32(DX)
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y1, Y8
	VFMADD231PS  32(DX), Y1, Y9
	VMOVUPS      Y8, (DX)
	VMOVUPS      Y9, 32(DX)
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y1, Y10
	VFMADD231PS  32(DX), Y1, Y11
	VMOVUPS      Y10, (DX)
	VMOVUPS      Y11, 32(DX)
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y1, Y12
	VFMADD231PS  32(DX), Y1, Y13
	VMOVUPS      Y12, (DX)
	VMOVUPS      Y13, 32(DX)
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y1, Y14
	VFMADD231PS  32(DX), Y1, Y15
	VMOVUPS      Y14, (DX)
	VMOVUPS      Y15, 32(DX)
	VZEROUPPER
	RET

overwrite:
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y12, (DX)
	VMOVUPS Y13, 32(DX)
	ADDQ    R9, DX
	VMOVUPS Y14, (DX)
	VMOVUPS Y15, 32(DX)
	VZEROUPPER
	RET

// func rowKernel(k int, a *float32, as int, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)
//
// rowKernel computes the single output row c[j] = alpha*sum_p a[p*as]*b[p*ldb+j] + beta*c[j]
// for 0 <= j < n, streaming B straight from memory without packing. It is the
// m == 1 (vector times matrix) path. k must be positive. Columns are handled
// in blocks of 64, then 8, then a masked tail, so no element past column n-1
// of any B row or of c is touched. A zero a[p] (either sign) skips row p of B
// altogether, as reference BLAS SGEMV skips zero elements of x: the inputs of
// a classifier are mostly background, so most rows of the first layer are
// never read. (The one difference from computing 0*b: an infinite or NaN b
// in a skipped row does not turn the sum into NaN.)
TEXT ·rowKernel(SB), NOSPLIT, $0-64
	MOVQ         as+16(FP), R10
	SHLQ         $2, R10
	MOVQ         b+24(FP), DI
	MOVQ         ldb+32(FP), R11
	SHLQ         $2, R11
	MOVQ         c+40(FP), DX
	MOVQ         n+48(FP), BX
	VBROADCASTSS alpha+56(FP), Y14
	VBROADCASTSS beta+60(FP), Y15
	MOVL         beta+60(FP), AX
	ANDL         $0x7fffffff, AX

rk64:
	CMPQ   BX, $64
	JL     rk8
	ZERO64
	MOVQ   a+8(FP), SI
	MOVQ   DI, R9
	MOVQ   k+0(FP), CX

rk64loop:
	MOVL         (SI), R8
	TESTL        $0x7fffffff, R8
	JZ           rk64next
	VBROADCASTSS (SI), Y8
	FMA64

rk64next:
	ADDQ R10, SI
	ADDQ R11, R9
	DECQ CX
	JNZ  rk64loop

	SCALE64
	TESTL  AX, AX
	JEQ    rk64store
	ADDC64

rk64store:
	STORE64
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $64, BX
	JMP     rk64

rk8:
	CMPQ   BX, $8
	JL     rktail
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ   a+8(FP), SI
	MOVQ   DI, R9
	MOVQ   k+0(FP), CX

	// Two accumulators on alternating steps halve the FMA dependency chain.
rk8loop2:
	CMPQ         CX, $2
	JL           rk8loop1
	MOVL         (SI), R8
	TESTL        $0x7fffffff, R8
	JZ           rk8second
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (R9), Y8, Y0

rk8second:
	ADDQ         R10, SI
	ADDQ         R11, R9
	MOVL         (SI), R8
	TESTL        $0x7fffffff, R8
	JZ           rk8pair
	VBROADCASTSS (SI), Y9
	VFMADD231PS  (R9), Y9, Y1

rk8pair:
	ADDQ R10, SI
	ADDQ R11, R9
	SUBQ $2, CX
	JMP  rk8loop2

rk8loop1:
	TESTQ        CX, CX
	JEQ          rk8done
	MOVL         (SI), R8
	TESTL        $0x7fffffff, R8
	JZ           rk8done
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (R9), Y8, Y0

rk8done:
	VADDPS Y1, Y0, Y0
	VMULPS Y14, Y0, Y0
	TESTL  AX, AX
	JEQ    rk8store
	VFMADD231PS (DX), Y15, Y0

rk8store:
	VMOVUPS Y0, (DX)
	ADDQ    $32, DI
	ADDQ    $32, DX
	SUBQ    $8, BX
	JMP     rk8

rktail:
	TESTQ BX, BX
	JEQ   rkdone

	// Mask selecting the first BX (< 8) lanes.
	LEAQ    maskTable<>(SB), R12
	MOVQ    $8, R13
	SUBQ    BX, R13
	VMOVUPS (R12)(R13*4), Y13
	VXORPS  Y0, Y0, Y0
	MOVQ    a+8(FP), SI
	MOVQ    DI, R9
	MOVQ    k+0(FP), CX

rktailloop:
	MOVL         (SI), R8
	TESTL        $0x7fffffff, R8
	JZ           rktailnext
	VMASKMOVPS   (R9), Y13, Y1
	VBROADCASTSS (SI), Y8
	VFMADD231PS  Y1, Y8, Y0

rktailnext:
	ADDQ R10, SI
	ADDQ R11, R9
	DECQ CX
	JNZ  rktailloop

	VMULPS Y14, Y0, Y0
	TESTL  AX, AX
	JEQ    rktailstore
	VMASKMOVPS  (DX), Y13, Y1
	VFMADD231PS Y1, Y15, Y0

rktailstore:
	VMASKMOVPS Y0, Y13, (DX)

rkdone:
	VZEROUPPER
	RET

// func dotRows(k int, a *float32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)
//
// dotRows computes c[j] = alpha*dot(a[0:k], b[j*ldb:j*ldb+k]) + beta*c[j] for
// 0 <= j < n. It is the m == 1 path when B is transposed: every output is a
// dot product of the input vector with a contiguous row of B. Rows are taken
// four at a time (eight accumulators), then one at a time. The k % 8 tail is
// read with masked loads, so nothing past the end of a row is touched. k must
// be positive.
TEXT ·dotRows(SB), NOSPLIT, $0-56
	MOVQ         b+16(FP), DI
	MOVQ         ldb+24(FP), R11
	SHLQ         $2, R11
	MOVQ         c+32(FP), DX
	MOVQ         n+40(FP), BX
	VBROADCASTSS alpha+48(FP), X14
	VBROADCASTSS beta+52(FP), X15
	MOVQ         k+0(FP), R14
	MOVQ         R14, R15
	ANDQ         $7, R15          // tail length
	SUBQ         R15, R14         // k rounded down to a multiple of 8
	SHLQ         $2, R14          // ... in bytes
	LEAQ         maskTable<>(SB), R12
	MOVQ         $8, R13
	SUBQ         R15, R13
	VMOVUPS      (R12)(R13*4), Y13
	MOVQ         a+8(FP), SI

dr4:
	CMPQ   BX, $4
	JL     dr1
	MOVQ   DI, R8
	LEAQ   (DI)(R11*1), R9
	LEAQ   (DI)(R11*2), R10
	LEAQ   (R9)(R11*2), R12
	ZERO64
	XORQ   AX, AX

dr4loop16:
	LEAQ        64(AX), CX
	CMPQ        CX, R14
	JG          dr4loop8
	VMOVUPS     (SI)(AX*1), Y8
	VMOVUPS     32(SI)(AX*1), Y9
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS 32(R8)(AX*1), Y9, Y4
	VFMADD231PS (R9)(AX*1), Y8, Y1
	VFMADD231PS 32(R9)(AX*1), Y9, Y5
	VFMADD231PS (R10)(AX*1), Y8, Y2
	VFMADD231PS 32(R10)(AX*1), Y9, Y6
	VFMADD231PS (R12)(AX*1), Y8, Y3
	VFMADD231PS 32(R12)(AX*1), Y9, Y7
	MOVQ        CX, AX
	JMP         dr4loop16

dr4loop8:
	CMPQ        AX, R14
	JGE         dr4tail
	VMOVUPS     (SI)(AX*1), Y8
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS (R9)(AX*1), Y8, Y1
	VFMADD231PS (R10)(AX*1), Y8, Y2
	VFMADD231PS (R12)(AX*1), Y8, Y3
	ADDQ        $32, AX

dr4tail:
	TESTQ       R15, R15
	JEQ         dr4reduce
	VMASKMOVPS  (SI)(AX*1), Y13, Y8
	VMASKMOVPS  (R8)(AX*1), Y13, Y9
	VFMADD231PS Y9, Y8, Y4
	VMASKMOVPS  (R9)(AX*1), Y13, Y9
	VFMADD231PS Y9, Y8, Y5
	VMASKMOVPS  (R10)(AX*1), Y13, Y9
	VFMADD231PS Y9, Y8, Y6
	VMASKMOVPS  (R12)(AX*1), Y13, Y9
	VFMADD231PS Y9, Y8, Y7

dr4reduce:
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0   // X0 = the four dot products
	VMULPS       X14, X0, X0
	MOVL         beta+52(FP), CX
	ANDL         $0x7fffffff, CX
	JEQ          dr4store
	VFMADD231PS  (DX), X15, X0

dr4store:
	VMOVUPS X0, (DX)
	ADDQ    $16, DX
	LEAQ    (DI)(R11*4), DI
	SUBQ    $4, BX
	JMP     dr4

dr1:
	TESTQ  BX, BX
	JEQ    drdone
	VXORPS Y0, Y0, Y0
	VXORPS Y4, Y4, Y4
	XORQ   AX, AX

dr1loop8:
	CMPQ        AX, R14
	JGE         dr1tail
	VMOVUPS     (SI)(AX*1), Y8
	VFMADD231PS (DI)(AX*1), Y8, Y0
	ADDQ        $32, AX
	CMPQ        AX, R14
	JGE         dr1tail
	VMOVUPS     (SI)(AX*1), Y8
	VFMADD231PS (DI)(AX*1), Y8, Y4
	ADDQ        $32, AX
	JMP         dr1loop8

dr1tail:
	TESTQ       R15, R15
	JEQ         dr1reduce
	VMASKMOVPS  (SI)(AX*1), Y13, Y8
	VMASKMOVPS  (DI)(AX*1), Y13, Y9
	VFMADD231PS Y9, Y8, Y4

dr1reduce:
	VADDPS       Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMULSS       X14, X0, X0
	MOVL         beta+52(FP), CX
	ANDL         $0x7fffffff, CX
	JEQ          dr1store
	VFMADD231SS  (DX), X15, X0

dr1store:
	VMOVSS X0, (DX)
	ADDQ   $4, DX
	ADDQ   R11, DI
	DECQ   BX
	JMP    dr1

drdone:
	VZEROUPPER
	RET

// func rowKernelList(cnt int, vals *float32, idx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)
//
// rowKernelList computes c[j] = alpha*sum_i vals[i]*b[idx[i]*ldb+j] + beta*c[j] for 0 <= j < n, n a positive multiple
// of 64: rowKernel's 64-column loop over a list of the nonzero inputs (vals) and their rows of B (idx) instead of over
// all k inputs. Each column is summed by one accumulator in the order of the list, so for the list nonzeros makes the
// sums are rowKernel's, bit for bit, without a branch per input to mispredict.
TEXT ·rowKernelList(SB), NOSPLIT, $0-64
	MOVQ         cnt+0(FP), R10
	MOVQ         vals+8(FP), SI
	MOVQ         idx+16(FP), R12
	MOVQ         b+24(FP), DI
	MOVQ         ldb+32(FP), R11
	SHLQ         $2, R11
	MOVQ         c+40(FP), DX
	MOVQ         n+48(FP), BX
	VBROADCASTSS alpha+56(FP), Y14
	VBROADCASTSS beta+60(FP), Y15
	MOVL         beta+60(FP), AX
	ANDL         $0x7fffffff, AX

rl64:
	CMPQ   BX, $64
	JL     rldone
	ZERO64
	XORQ   CX, CX
	CMPQ   CX, R10
	JGE    rlscale

rlloop:
	MOVLQSX      (R12)(CX*4), R9
	IMULQ        R11, R9
	VBROADCASTSS (SI)(CX*4), Y8
	ADDQ         DI, R9
	FMA64
	INCQ         CX
	CMPQ         CX, R10
	JL           rlloop

rlscale:
	SCALE64
	TESTL  AX, AX
	JEQ    rlstore
	ADDC64

rlstore:
	STORE64
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $64, BX
	JMP     rl64

rldone:
	VZEROUPPER
	RET

// Lane numbers 0 to 7, the indices of the first eight inputs.
DATA laneIota<>+0(SB)/4, $0
DATA laneIota<>+4(SB)/4, $1
DATA laneIota<>+8(SB)/4, $2
DATA laneIota<>+12(SB)/4, $3
DATA laneIota<>+16(SB)/4, $4
DATA laneIota<>+20(SB)/4, $5
DATA laneIota<>+24(SB)/4, $6
DATA laneIota<>+28(SB)/4, $7
GLOBL laneIota<>(SB), RODATA|NOPTR, $32

// func compressNonzero(chunks int, a *float32, lut *[256][8]int32, vals *float32, idx *int32) int
//
// compressNonzero writes the values among a[0:8*chunks] with bits other than the sign set to vals, and their indices
// to idx, in order, and returns how many. Each group of eight is moved with a permutation from lut chosen by its
// mask of nonzero lanes, so nothing branches on the values. Each group writes eight values and eight indices past
// those already kept, so vals and idx need room for seven more than the count.
TEXT ·compressNonzero(SB), NOSPLIT, $0-48
	MOVQ         chunks+0(FP), CX
	MOVQ         a+8(FP), SI
	MOVQ         lut+16(FP), R8
	MOVQ         vals+24(FP), DI
	MOVQ         idx+32(FP), R9
	XORQ         AX, AX
	MOVL         $0x7fffffff, R10
	VMOVD        R10, X15
	VPBROADCASTD X15, Y15
	MOVL         $8, R10
	VMOVD        R10, X13
	VPBROADCASTD X13, Y13
	VMOVDQU      laneIota<>(SB), Y14
	VPXOR        Y12, Y12, Y12
	TESTQ        CX, CX
	JEQ          cndone

cnloop:
	VMOVUPS   (SI), Y0
	VPAND     Y15, Y0, Y1
	VPCMPEQD  Y12, Y1, Y1
	VMOVMSKPS Y1, DX
	XORL      $0xff, DX
	POPCNTL   DX, R10
	SHLQ      $5, DX
	VMOVDQU   (R8)(DX*1), Y2
	VPERMPS   Y0, Y2, Y3
	VPERMD    Y14, Y2, Y4
	VMOVUPS   Y3, (DI)(AX*4)
	VMOVDQU   Y4, (R9)(AX*4)
	ADDQ      R10, AX
	VPADDD    Y13, Y14, Y14
	ADDQ      $32, SI
	DECQ      CX
	JNZ       cnloop

cndone:
	MOVQ AX, ret+40(FP)
	VZEROUPPER
	RET

// func rowKernelListNarrow(cnt int, vals *float32, idx *int32, even int, pvals *float32, pidx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)
//
// rowKernelListNarrow is rowKernel's loops over 8-column groups and a masked tail, n < 64 columns, over a list of the
// cnt nonzero inputs (vals, their rows of B in idx, see nonzeros) instead of over all k inputs. rowKernel sums the
// inputs of even index p in one accumulator and those of odd index in another, then adds the two; pvals and pidx hold
// the same list with the first even entries of even index and the rest of odd index, each part in order (byParity),
// so each accumulator here sums the same products in the same order, bit for bit. The tail's single accumulator takes
// the list in order, as rowKernel's takes the inputs.
TEXT ·rowKernelListNarrow(SB), NOSPLIT, $0-88
	MOVQ         cnt+0(FP), R10
	MOVQ         vals+8(FP), SI
	MOVQ         idx+16(FP), R12
	MOVQ         even+24(FP), R13
	MOVQ         pvals+32(FP), R14
	MOVQ         pidx+40(FP), R15
	MOVQ         b+48(FP), DI
	MOVQ         ldb+56(FP), R11
	SHLQ         $2, R11
	MOVQ         c+64(FP), DX
	MOVQ         n+72(FP), BX
	VBROADCASTSS alpha+80(FP), Y14
	VBROADCASTSS beta+84(FP), Y15
	MOVL         beta+84(FP), AX
	ANDL         $0x7fffffff, AX

rn8:
	CMPQ   BX, $8
	JL     rntail
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   CX, CX
	CMPQ   CX, R13
	JGE    rnodd

rneven:
	MOVLQSX      (R15)(CX*4), R9
	IMULQ        R11, R9
	VBROADCASTSS (R14)(CX*4), Y8
	VFMADD231PS  (DI)(R9*1), Y8, Y0
	INCQ         CX
	CMPQ         CX, R13
	JL           rneven

rnodd:
	CMPQ CX, R10
	JGE  rn8done

rnoddloop:
	MOVLQSX      (R15)(CX*4), R9
	IMULQ        R11, R9
	VBROADCASTSS (R14)(CX*4), Y9
	VFMADD231PS  (DI)(R9*1), Y9, Y1
	INCQ         CX
	CMPQ         CX, R10
	JL           rnoddloop

rn8done:
	VADDPS Y1, Y0, Y0
	VMULPS Y14, Y0, Y0
	TESTL  AX, AX
	JEQ    rn8store
	VFMADD231PS (DX), Y15, Y0

rn8store:
	VMOVUPS Y0, (DX)
	ADDQ    $32, DI
	ADDQ    $32, DX
	SUBQ    $8, BX
	JMP     rn8

rntail:
	TESTQ BX, BX
	JEQ   rndone

	// Mask selecting the first BX (< 8) lanes.
	LEAQ    maskTable<>(SB), R9
	MOVQ    $8, CX
	SUBQ    BX, CX
	VMOVUPS (R9)(CX*4), Y13
	VXORPS  Y0, Y0, Y0
	XORQ    CX, CX
	CMPQ    CX, R10
	JGE     rntaildone

rntailloop:
	MOVLQSX      (R12)(CX*4), R9
	IMULQ        R11, R9
	ADDQ         DI, R9
	VMASKMOVPS   (R9), Y13, Y1
	VBROADCASTSS (SI)(CX*4), Y8
	VFMADD231PS  Y1, Y8, Y0
	INCQ         CX
	CMPQ         CX, R10
	JL           rntailloop

rntaildone:
	VMULPS Y14, Y0, Y0
	TESTL  AX, AX
	JEQ    rntailstore
	VMASKMOVPS  (DX), Y13, Y1
	VFMADD231PS Y1, Y15, Y0

rntailstore:
	VMASKMOVPS Y0, Y13, (DX)

rndone:
	VZEROUPPER
	RET

// func rowKernelList512(cnt int, vals *float32, idx *int32, b *float32, ldb int, c *float32, n int, alpha float32, beta float32)
//
// rowKernelList512 is rowKernelList with AVX-512: 128 columns per pass over the list in sixteen-wide registers, then a
// last 64. Each column is still summed by one accumulator in the order of the list, with the same fused multiply-adds
// and the same scaling, so the result is rowKernelList's bit for bit, with half the instructions and passes.
TEXT ·rowKernelList512(SB), NOSPLIT, $0-64
	MOVQ         cnt+0(FP), R10
	MOVQ         vals+8(FP), SI
	MOVQ         idx+16(FP), R12
	MOVQ         b+24(FP), DI
	MOVQ         ldb+32(FP), R11
	SHLQ         $2, R11
	MOVQ         c+40(FP), DX
	MOVQ         n+48(FP), BX
	VBROADCASTSS alpha+56(FP), Z14
	VBROADCASTSS beta+60(FP), Z15
	MOVL         beta+60(FP), AX
	ANDL         $0x7fffffff, AX

zl128:
	CMPQ BX, $128
	JL   zl64
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	XORQ CX, CX
	CMPQ CX, R10
	JGE  zl128scale

zl128loop:
	MOVLQSX      (R12)(CX*4), R9
	IMULQ        R11, R9
	VBROADCASTSS (SI)(CX*4), Z8
	ADDQ         DI, R9
	VFMADD231PS  (R9), Z8, Z0
	VFMADD231PS  64(R9), Z8, Z1
	VFMADD231PS  128(R9), Z8, Z2
	VFMADD231PS  192(R9), Z8, Z3
	VFMADD231PS  256(R9), Z8, Z4
	VFMADD231PS  320(R9), Z8, Z5
	VFMADD231PS  384(R9), Z8, Z6
	VFMADD231PS  448(R9), Z8, Z7
	INCQ         CX
	CMPQ         CX, R10
	JL           zl128loop

zl128scale:
	VMULPS Z14, Z0, Z0
	VMULPS Z14, Z1, Z1
	VMULPS Z14, Z2, Z2
	VMULPS Z14, Z3, Z3
	VMULPS Z14, Z4, Z4
	VMULPS Z14, Z5, Z5
	VMULPS Z14, Z6, Z6
	VMULPS Z14, Z7, Z7
	TESTL  AX, AX
	JEQ    zl128store
	VFMADD231PS (DX), Z15, Z0
	VFMADD231PS 64(DX), Z15, Z1
	VFMADD231PS 128(DX), Z15, Z2
	VFMADD231PS 192(DX), Z15, Z3
	VFMADD231PS 256(DX), Z15, Z4
	VFMADD231PS 320(DX), Z15, Z5
	VFMADD231PS 384(DX), Z15, Z6
	VFMADD231PS 448(DX), Z15, Z7

zl128store:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	ADDQ    $512, DI
	ADDQ    $512, DX
	SUBQ    $128, BX
	JMP     zl128
zl64:
	CMPQ BX, $64
	JL   zldone
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ CX, CX
	CMPQ CX, R10
	JGE  zl64scale

zl64loop:
	MOVLQSX      (R12)(CX*4), R9
	IMULQ        R11, R9
	VBROADCASTSS (SI)(CX*4), Z8
	ADDQ         DI, R9
	VFMADD231PS  (R9), Z8, Z0
	VFMADD231PS  64(R9), Z8, Z1
	VFMADD231PS  128(R9), Z8, Z2
	VFMADD231PS  192(R9), Z8, Z3
	INCQ         CX
	CMPQ         CX, R10
	JL           zl64loop

zl64scale:
	VMULPS Z14, Z0, Z0
	VMULPS Z14, Z1, Z1
	VMULPS Z14, Z2, Z2
	VMULPS Z14, Z3, Z3
	TESTL  AX, AX
	JEQ    zl64store
	VFMADD231PS (DX), Z15, Z0
	VFMADD231PS 64(DX), Z15, Z1
	VFMADD231PS 128(DX), Z15, Z2
	VFMADD231PS 192(DX), Z15, Z3

zl64store:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $64, BX
	JMP     zl64
zldone:
	VZEROUPPER
	RET

// func relu8(n int, v *float32)
//
// relu8 replaces each of v[0:n], n a positive multiple of 8, by max(v[i], 0) as Go computes it on amd64: the value
// itself when it is above zero, a NaN with its sign bit cleared (and its payload kept), else +0, -0 included. The
// compare "not less or equal" is true for both the values above zero and NaN.
TEXT ·relu8(SB), NOSPLIT, $0-16
	MOVQ         n+0(FP), CX
	MOVQ         v+8(FP), SI
	VXORPS       Y15, Y15, Y15
	MOVL         $0x7fffffff, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14

reluloop:
	VMOVUPS (SI), Y0
	VCMPPS  $6, Y15, Y0, Y1
	VANDPS  Y0, Y1, Y0
	VANDPS  Y14, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     reluloop
	VZEROUPPER
	RET
