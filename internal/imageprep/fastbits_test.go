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

// TestLevelHistMatchesACount checks the counts, the sums of columns and rows, and the mask of levelHist against a
// plain count, on every width up to past bitRowMax and lengths around the eight bytes it takes at a time, and the
// sums of the first level that firstSums sets.
func TestLevelHistMatchesACount(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for w := 1; w <= bitRowMax+6; w++ {
		for h := 1; h <= 9; h++ {
			n := w * h
			levels := make([]byte, n)
			for i := range levels {
				if rng.IntN(3) == 0 {
					levels[i] = byte(rng.IntN(256))
				}
			}
			first := levels[0]
			var sums, want [256]uint64
			var present, wantPresent [4]uint64
			mask := make([]uint64, (n+63)/64)
			levelHist(levels, w, first, &sums, mask, &present)
			for i, b := range levels {
				want[b]++
				if b != first && w <= bitRowMax {
					want[b] += uint64(i%w)<<sumX | uint64(i/w)<<sumY
				}
				wantPresent[b>>6] |= 1 << (b & 63)
				if got := mask[i>>6]>>(i&63)&1 == 1; got != (b != first) {
					t.Fatalf("%dx%d levels: pixel %d (level %d, first %d) is marked %v", w, h, i, b, first, got)
				}
			}
			if sums != want || present != wantPresent {
				t.Fatalf("%dx%d levels: sums %v, levels present %x; want %v, %x", w, h, sums, present, want, wantPresent)
			}
			if w > bitRowMax {
				continue
			}
			var sx, sy uint64
			for i, b := range levels {
				if b == first {
					sx, sy = sx+uint64(i%w), sy+uint64(i/w)
				}
			}
			firstSums(&sums, first, w, h, &present)
			if got, want := sums[first], want[first]|sx<<sumX|sy<<sumY; got != want {
				t.Fatalf("%dx%d levels: the sums of the first level are %x; want %x", w, h, got, want)
			}
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

// TestLevelMaskMatchesACompare checks the vector compares of levelMask against a compare of each level, for every
// comparison, on lengths around the 64 levels it takes at a time and every byte compared with.
func TestLevelMaskMatchesACompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for n := 1; n < 200; n++ {
		levels := make([]byte, n)
		for i := range levels {
			levels[i] = byte(rng.IntN(256))
		}
		mask := make([]uint64, (n+63)/64)
		for c := range 256 {
			for op, name := range []string{"other than", "at least", "at most"} {
				for i := range mask {
					mask[i] = rng.Uint64() // levelMask sets every bit
				}
				levelMask(mask, levels, byte(c), op)
				for i, b := range levels {
					want := [...]bool{b != byte(c), b >= byte(c), b <= byte(c)}[op]
					if got := mask[i>>6]>>(i&63)&1 == 1; got != want {
						t.Fatalf("%d levels: level %d (pixel %d) %s %d is marked %v", n, b, i, name, c, got)
					}
				}
				if r := n & 63; r != 0 && mask[len(mask)-1]>>r != 0 {
					t.Fatalf("%d levels, %s %d: bits set past the end: %x", n, name, c, mask[len(mask)-1])
				}
			}
		}
	}
}

// TestRowOfIndexIsExact checks the fixed-point division of levelHist on every pixel index and width it takes.
func TestRowOfIndexIsExact(t *testing.T) {
	for w := uint64(1); w <= bitRowMax; w++ {
		inv := (1<<32 + w - 1) / w
		for i := uint64(0); i < 2*maxSample; i++ {
			if got := i * inv >> 32; got != i/w {
				t.Fatalf("width %d, index %d: row %d; want %d", w, i, got, i/w)
			}
		}
	}
}
