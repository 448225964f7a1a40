package imageprep

import (
	"math/rand/v2"
	"testing"
)

// TestRunsOfMatchesLongestRuns checks the doubling measure of runs on bit rows against longestRuns on the same ink
// as floats, for random shapes of every density and every threshold.
func TestRunsOfMatchesLongestRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var p Preparer
	for r := range 3000 {
		w, h := 1+rng.IntN(64), 1+rng.IntN(64)
		density := rng.Float64()
		half := make([]uint64, h)
		ink := make([]float32, w*h)
		for y := range h {
			for x := range w {
				if rng.Float64() < density {
					half[y] |= 1 << x
					ink[y*w+x] = 0.5 + 0.5*rng.Float32()
				} else if rng.IntN(2) == 0 {
					ink[y*w+x] = 0.49 * rng.Float32() // ink, but not at least 0.5
				}
			}
		}
		longH, longV := p.longestRuns(ink, w, h)
		for n := 1; n <= 66; n++ {
			if got, want := p.runsOf(half, n), min(longH, longV) >= int32(n); got != want {
				t.Fatalf("case %d (%dx%d, longest runs %d and %d): runsOf(%d) = %v; want %v", r, w, h, longH, longV, n, got, want)
			}
		}
	}
}

// TestLevelHistMatchesACount checks the histogram and the mask of levelHist against a plain count, on every length
// around the eight bytes it takes at a time.
func TestLevelHistMatchesACount(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for n := 1; n < 300; n++ {
		levels := make([]byte, n)
		for i := range levels {
			if rng.IntN(3) == 0 {
				levels[i] = byte(rng.IntN(256))
			}
		}
		first := levels[0]
		var hist, want [256]int32
		var present, wantPresent [4]uint64
		mask := make([]uint64, (n+63)/64)
		levelHist(levels, first, &hist, mask, &present)
		for i, b := range levels {
			want[b]++
			wantPresent[b>>6] |= 1 << (b & 63)
			if got := mask[i>>6]>>(i&63)&1 == 1; got != (b != first) {
				t.Fatalf("%d levels: pixel %d (level %d, first %d) is marked %v", n, i, b, first, got)
			}
		}
		if hist != want || present != wantPresent {
			t.Fatalf("%d levels: histogram %v, levels present %x; want %v, %x", n, hist, present, want, wantPresent)
		}
	}
}

// TestInkIsAMultipleOf2ToTheMinus28 checks the premise of inkSums on every flat background and every strength the
// fast path goes on with: the nonzero ink of every level is at least 2^-5, so a float32 multiple of 2^-28, and the
// fixed-point sums are exact (the fast path would fall back to fit's own sums otherwise, so this checks that the
// fixed-point ones are the ones used).
func TestInkIsAMultipleOf2ToTheMinus28(t *testing.T) {
	for c := range 256 {
		back := gray8[c]
		if back > 0.02 && back < 0.98 {
			continue // not a flat background the fast path takes
		}
		var ink [256]float32
		for b, x := range gray8 {
			if back >= 0.5 {
				ink[b] = max(back-x, 0)
			} else {
				ink[b] = max(x-back, 0)
			}
		}
		for _, strength := range ink {
			if strength < minContrast {
				continue
			}
			floor, inv := relFloor*strength, 1/strength
			for b, x := range ink {
				if x < floor {
					continue
				}
				if v := min(x*inv, 1); v < 0x1p-5 || float64(v)*0x1p28 != float64(int64(float64(v)*0x1p28)) {
					t.Fatalf("background %d, strength %v: the ink of level %d is %v; want 0 or a multiple of 2^-28 of at least 2^-5", c, strength, b, v)
				}
			}
		}
	}
}
