#include "textflag.h"

// func adamAVX2(p, g, m, v []float32, b1, b2, ob1, ob2, lr, eps float32)
// For the first len(p)&^7 elements: m = b1·m + ob1·g; v = b2·v + ob2·g²; p -= lr·m/(√v + eps).
TEXT ·adamAVX2(SB), NOSPLIT, $0-120
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	VBROADCASTSS b1+96(FP), Y0
	VBROADCASTSS b2+100(FP), Y1
	VBROADCASTSS ob1+104(FP), Y2
	VBROADCASTSS ob2+108(FP), Y3
	VBROADCASTSS lr+112(FP), Y4
	VBROADCASTSS eps+116(FP), Y5
	SHRQ $3, CX
	JZ   adamdone

adamloop:
	VMOVUPS      (SI), Y6         // g
	VMULPS       (R8), Y0, Y7     // b1·m
	VFMADD231PS  Y6, Y2, Y7       // + ob1·g
	VMOVUPS      Y7, (R8)
	VMULPS       Y6, Y6, Y8       // g²
	VMULPS       (R9), Y1, Y9     // b2·v
	VFMADD231PS  Y8, Y3, Y9       // + ob2·g²
	VMOVUPS      Y9, (R9)
	VSQRTPS      Y9, Y9
	VADDPS       Y5, Y9, Y9       // √v + eps
	VDIVPS       Y9, Y7, Y7       // m / (√v + eps)
	VMOVUPS      (DI), Y10
	VFNMADD231PS Y7, Y4, Y10      // p -= lr·ratio
	VMOVUPS      Y10, (DI)
	ADDQ         $32, DI
	ADDQ         $32, SI
	ADDQ         $32, R8
	ADDQ         $32, R9
	DECQ         CX
	JNZ          adamloop

adamdone:
	VZEROUPPER
	RET

// func momentumAVX2(p, g, v []float32, mu, lr float32)
// For the first len(p)&^7 elements: v = mu·v + g; p -= lr·v.
TEXT ·momentumAVX2(SB), NOSPLIT, $0-80
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ v_base+48(FP), R8
	VBROADCASTSS mu+72(FP), Y0
	VBROADCASTSS lr+76(FP), Y1
	SHRQ $3, CX
	JZ   momdone

momloop:
	VMOVUPS      (R8), Y2
	VFMADD213PS  (SI), Y0, Y2     // v = mu·v + g
	VMOVUPS      Y2, (R8)
	VMOVUPS      (DI), Y3
	VFNMADD231PS Y2, Y1, Y3       // p -= lr·v
	VMOVUPS      Y3, (DI)
	ADDQ         $32, DI
	ADDQ         $32, SI
	ADDQ         $32, R8
	DECQ         CX
	JNZ          momloop

momdone:
	VZEROUPPER
	RET
