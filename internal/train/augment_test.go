package train

import (
	"math/rand/v2"
	"testing"
)

func TestWarp(t *testing.T) {
	const rows, cols = 5, 6
	src := make([]byte, rows*cols)
	src[2*cols+3] = 255 // one bright pixel at (3, 2)
	dst := make([]float32, rows*cols)

	warp(dst, src, rows, cols, 0, 1, 0, 0, 0)
	for i, v := range dst {
		if want := float32(src[i]) / 255; v != want {
			t.Fatalf("identity: pixel %d = %v; want %v", i, v, want)
		}
	}
	warp(dst, src, rows, cols, 0, 1, 0, 1, -1)
	if dst[1*cols+4] != 1 || dst[2*cols+3] != 0 {
		t.Errorf("shift by (+1, -1): the bright pixel did not move from (3,2) to (4,1): %v", dst)
	}
}

func TestAugmentKeepsValuesInRangeAndInkMostlyInFrame(t *testing.T) {
	trainSet, _ := loadMNIST(t)
	rng := rand.New(rand.NewPCG(1, 1))
	dst := make([]float32, trainSet.Features())
	for i := range 200 {
		augment(dst, trainSet.Image(i), trainSet.Rows, trainSet.Cols, 1, rng)
		var before, after float64
		for j, v := range dst {
			if v < 0 || v > 1 {
				t.Fatalf("example %d pixel %d = %v, outside 0..1", i, j, v)
			}
			after += float64(v)
			before += float64(trainSet.Image(i)[j]) / 255
		}
		// Scaling by at most 12% changes the ink area by at most about a quarter; more means the digit left the frame.
		if r := after / before; r < 0.7 || r > 1.35 {
			t.Errorf("example %d: ink %.1f became %.1f", i, before, after)
		}
	}
}
