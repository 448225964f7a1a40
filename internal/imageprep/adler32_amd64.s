#include "textflag.h"

// Weights of the bytes of a 16-byte chunk in the chunk's share of s2: 16 for the first byte down to 1 for the last.
DATA adlerHigh<>+0(SB)/8, $0x000d000e000f0010
DATA adlerHigh<>+8(SB)/8, $0x0009000a000b000c
GLOBL adlerHigh<>(SB), RODATA|NOPTR, $16
DATA adlerLow<>+0(SB)/8, $0x0005000600070008
DATA adlerLow<>+8(SB)/8, $0x0001000200030004
GLOBL adlerLow<>(SB), RODATA|NOPTR, $16

// func adler32Chunks(s1, s2 uint32, p []byte) (uint32, uint32)
TEXT ·adler32Chunks(SB), NOSPLIT, $0-40
	MOVLQZX s1+0(FP), AX
	MOVLQZX s2+4(FP), BX
	MOVQ    p_base+8(FP), SI
	MOVQ    p_len+16(FP), CX
	SHRQ    $4, CX
	JZ      done

	// s2 gains 16*s1 per chunk for the s1 it started with.
	MOVQ  CX, DX
	SHLQ  $4, DX
	IMULQ AX, DX
	ADDQ  DX, BX

	PXOR   X0, X0 // zero
	PXOR   X1, X1 // the bytes' sum so far
	PXOR   X2, X2 // the sum, over chunks, of the bytes before each
	PXOR   X3, X3 // the chunks' bytes weighted 16 to 1
	MOVOU  adlerHigh<>(SB), X6
	MOVOU  adlerLow<>(SB), X7

loop:
	MOVOU    (SI), X4
	PADDD    X1, X2
	MOVO     X4, X5
	PSADBW   X0, X5
	PADDD    X5, X1
	MOVO     X4, X5
	PUNPCKLBW X0, X4
	PUNPCKHBW X0, X5
	PMADDWL  X6, X4
	PMADDWL  X7, X5
	PADDD    X4, X3
	PADDD    X5, X3
	ADDQ     $16, SI
	DECQ     CX
	JNZ      loop

	// s2 += 16*sum(X2) + sum(X3); s1 += sum(X1).
	PSLLL   $4, X2
	PADDD   X2, X3
	PSHUFD  $0x4e, X3, X5
	PADDD   X5, X3
	PSHUFD  $0xb1, X3, X5
	PADDD   X5, X3
	MOVQ    X3, DX
	MOVLQZX DX, DX
	ADDQ    DX, BX
	PSHUFD  $0x4e, X1, X5
	PADDD   X5, X1
	MOVQ    X1, DX
	MOVLQZX DX, DX
	ADDQ    DX, AX

done:
	MOVL AX, ret+32(FP)
	MOVL BX, ret1+36(FP)
	RET
