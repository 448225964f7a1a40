#include "textflag.h"

// The bits of 64 bytes from SI, one 16-byte compare result in each of X0 to X3, gathered into R8 and stored at DI.
#define GATHER \
	PMOVMSKB X0, R8  \
	PMOVMSKB X1, R9  \
	PMOVMSKB X2, R10 \
	PMOVMSKB X3, R11 \
	SHLQ     $16, R9  \
	SHLQ     $32, R10 \
	SHLQ     $48, R11 \
	ORQ      R9, R8   \
	ORQ      R11, R10 \
	ORQ      R10, R8

#define LOAD \
	MOVOU 0(SI), X0  \
	MOVOU 16(SI), X1 \
	MOVOU 32(SI), X2 \
	MOVOU 48(SI), X3

// func levelMaskBlocks(mask []uint64, levels []byte, rep uint64, op int)
TEXT ·levelMaskBlocks(SB), NOSPLIT, $0-64
	MOVQ       mask_base+0(FP), DI
	MOVQ       mask_len+8(FP), CX
	MOVQ       levels_base+24(FP), SI
	MOVQ       rep+48(FP), AX
	MOVQ       op+56(FP), DX
	MOVQ       AX, X7
	PUNPCKLQDQ X7, X7
	TESTQ      CX, CX
	JZ         done
	CMPQ       DX, $1
	JEQ        atLeast
	JGT        atMost

other:
	LOAD
	PCMPEQB X7, X0
	PCMPEQB X7, X1
	PCMPEQB X7, X2
	PCMPEQB X7, X3
	GATHER
	NOTQ    R8
	MOVQ    R8, 0(DI)
	ADDQ    $64, SI
	ADDQ    $8, DI
	DECQ    CX
	JNZ     other
	RET

atLeast:
	LOAD
	MOVOU   X0, X4
	MOVOU   X1, X5
	PMAXUB  X7, X4
	PMAXUB  X7, X5
	PCMPEQB X4, X0
	PCMPEQB X5, X1
	MOVOU   X2, X4
	MOVOU   X3, X5
	PMAXUB  X7, X4
	PMAXUB  X7, X5
	PCMPEQB X4, X2
	PCMPEQB X5, X3
	GATHER
	MOVQ    R8, 0(DI)
	ADDQ    $64, SI
	ADDQ    $8, DI
	DECQ    CX
	JNZ     atLeast
	RET

atMost:
	LOAD
	MOVOU   X0, X4
	MOVOU   X1, X5
	PMINUB  X7, X4
	PMINUB  X7, X5
	PCMPEQB X4, X0
	PCMPEQB X5, X1
	MOVOU   X2, X4
	MOVOU   X3, X5
	PMINUB  X7, X4
	PMINUB  X7, X5
	PCMPEQB X4, X2
	PCMPEQB X5, X3
	GATHER
	MOVQ    R8, 0(DI)
	ADDQ    $64, SI
	ADDQ    $8, DI
	DECQ    CX
	JNZ     atMost

done:
	RET
