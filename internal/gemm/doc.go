// Package gemm implements single-precision general matrix multiplication
// (SGEMM) for the multilayer-perceptron code: C = alpha*op(A)*op(B) + beta*C
// on row-major matrices, with the same argument conventions as the row-major
// Sgemm of gonum's blas32.
//
// # Design
//
// On amd64 CPUs with AVX2 and FMA the product is computed in the style of
// GotoBLAS and BLIS. The k dimension is cut into blocks of at most kcMax
// steps and the rows of C into blocks of at most mcMax rows. For each block,
// op(A) is copied ("packed") into a contiguous buffer made of micro-panels
// of mr = 6 rows, in which the six values needed at each step of k sit next to
// each other, and op(B) is packed into micro-panels of nr = 16 columns with the
// sixteen values of each step contiguous. Packing does three things: it turns
// all four transpose combinations into the same memory layout, so that a
// single micro-kernel serves them all; it makes the kernel's loads
// sequential, so that the hardware prefetcher and the caches work well
// (a packed B micro-panel stays in L1 while the A micro-panels stream
// through it from L2); and it lets edge panels be padded with zeros so that
// the kernel never needs to know about ragged shapes.
//
// The micro-kernel, written in Go assembly, keeps a 6x16 tile of C in twelve
// YMM registers. Each step of k loads two vectors of B, broadcasts six values
// of A and issues twelve FMAs, which is enough independent work to hide the
// FMA latency on both of the CPU's FMA pipes. Full tiles are updated in place
// in C; tiles at the right or bottom edge are computed into a small scratch
// tile and merged.
//
// On AMD Zen 4 this kernel reaches the CPU's peak of 32 single-precision
// flops per cycle with its operands in L1 (GEMM_TUNE=1 go test -run
// TestTuneKernel measures it): Zen 4 executes a 512-bit FMA as two 256-bit halves
// on the same two FMA pipes, so an AVX-512 kernel cannot raise the
// arithmetic peak and there is none. The remaining gap to peak in whole
// products comes from packing, edge tiles and memory traffic, not from the
// kernel.
//
// When B is not transposed its rows are already contiguous, so full
// 16-column panels of B can be fed to the kernel straight from the caller's
// matrix (the kernel takes a stride between steps). This avoids copying B at
// all, which matters for the small batch sizes used by a perceptron, where
// the copy would otherwise cost as much as a large part of the arithmetic.
//
// A product with a single row (m == 1, the inference path for one input)
// is a vector-matrix product, and padding it to six rows would waste five
// sixths of the work. It is handled by two dedicated assembly loops instead:
// one that streams the rows of B and accumulates 64 columns at a time, and
// one that computes dot products with the rows of B when B is transposed.
// The first skips the rows of B whose input is zero, which for an image's
// background is most of them. It reads a list of the nonzero inputs, made once
// per row with a branch-free AVX2 compaction, rather than testing every input
// in every 64-column block: inputs that are zero in runs (a digit's
// background, ReLU outputs) would cost a mispredicted branch at every change.
// The columns past the last whole 64 (all of them in a layer narrower than 64)
// read the same list, in the order rowKernel sums them. Every column is summed
// in the same order as by rowKernel's scan, so the list changes no bit.
//
// Where the CPU has AVX-512 that loop keeps 128 columns in sixteen-wide
// registers (rowKernelList512): half the instructions per listed input for
// the same sums in the same order, which is what bounds it when the FMA pipes
// execute 512-bit operations whole. SgemmSerialPair serves two products of
// the same A (two networks on the same inputs) and makes each row's list once
// for both. ReLU applies the activation eight values at a time.
//
// # Parallelism
//
// Sgemm splits C into as many parts as there are usable processors
// (runtime.GOMAXPROCS), either by rows or by column blocks, choosing the
// split that wastes least work on padding and on packing the same data twice,
// and runs one part on the calling goroutine. Products with fewer than
// parallelMinFlops floating-point operations run serially because starting
// and synchronising goroutines would cost more than it saves. SgemmSerial
// never starts goroutines. Packing buffers come from a sync.Pool, so steady-
// state serial calls do not allocate.
//
// # Fallback
//
// On other architectures, on amd64 CPUs without AVX2 and FMA, and when forced
// by the tests, the package calls gonum's pure-Go Sgemm
// (gonum.org/v1/gonum/blas/gonum).
package gemm
