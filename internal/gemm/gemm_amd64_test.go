package gemm

import "testing"

// TestSplit checks that the parallel split covers C exactly with chunks that
// are whole micro-tiles wide for the perceptron shapes.
func TestSplit(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly path")
	}
	for _, sh := range [][4]int{{64, 128, 784, 0}, {784, 128, 64, 0}, {64, 784, 128, 1}, {64, 128, 64, 1}, {32, 256, 784, 0}, {256, 128, 784, 0}, {7, 5, 3, 0}} {
		byRows, step, chunks := split(sh[3] == 1, sh[0], sh[1], sh[2], 2)
		unit, total := nr, sh[1]
		if byRows {
			unit, total = mr, sh[0]
		}
		if step%unit != 0 || step <= 0 || chunks < 1 || (chunks-1)*step >= total || chunks*step < total {
			t.Errorf("%v: split byRows=%v step=%d chunks=%d", sh, byRows, step, chunks)
		}
		t.Logf("%v: byRows=%v step=%d chunks=%d", sh, byRows, step, chunks)
	}
}
