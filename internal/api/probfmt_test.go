package api

import (
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// sameAsStrconv reports v when appendFloat does not write it as strconv does.
func sameAsStrconv(t testing.TB, v float32) bool {
	t.Helper()
	got := appendFloat(nil, v)
	want := strconv.AppendFloat(nil, float64(v), 'g', 6, 32)
	if string(got) != string(want) {
		t.Errorf("appendFloat(%#08x) = %s; want %s", math.Float32bits(v), got, want)
		return false
	}
	return true
}

// TestAppendFloatEdges compares appendFloat with strconv where its arithmetic turns: both ends of the range it
// formats itself and the values just outside it, the float32 around every power of ten and around the points where
// six digits round up to a new leading digit or round half way, and the exact ties, which go to the even digit.
func TestAppendFloatEdges(t *testing.T) {
	vs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 2, 1e-4, 1e-5, 0.5, 0.1, 1e6, 1e7, 123456789,
		math.SmallestNonzeroFloat32, math.Float32frombits(0x007fffff), math.Float32frombits(0x00800000),
		math.Float32frombits(0x00800001), math.Float32frombits(0x3f7fffff), math.Float32frombits(0x3f800001),
		math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	around := func(x float64) {
		f := math.Float32bits(float32(x))
		for d := uint32(0); d <= 8; d++ {
			vs = append(vs, math.Float32frombits(f+d), math.Float32frombits(f-d))
		}
	}
	for k := -46; k <= 1; k++ {
		p := math.Pow(10, float64(k))
		around(p)                    // a power of ten, where the exponent of the answer changes
		around(p * (1 - 0.5e-6))     // 9.999995e(k-1): rounds up to a new leading digit
		around(p * (1 + 0.5e-5))     // 1.000005e(k): half way between 1.00000 and 1.00001
		around(p * 5.555555)         // the middle of a decade
		around(p * (9.99999 + 5e-6)) // half way between 9.99999 and 10.0000
	}
	// The exact ties: float32 values with seven significant digits, the last a 5. Below 1 they are n/(2·10^j) for odd
	// n in [2·10^5, 2·10^6) and j >= 6, exactly representable only when 5^j divides n, which leaves a few dozen, all
	// at least 2^-10.
	ties := 0
	for j := int64(6); j <= 12; j++ {
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(j), nil)
		den.Lsh(den, 1)
		step := new(big.Int).Exp(big.NewInt(5), big.NewInt(j), nil).Int64()
		for n := step; n < 2e6; n += 2 * step {
			if n < 2e5 {
				continue
			}
			f, exact := new(big.Rat).SetFrac(big.NewInt(n), den).Float32()
			if exact {
				vs = append(vs, f)
				ties++
			}
		}
	}
	if ties < 20 {
		t.Fatalf("%d ties found; want a few dozen", ties)
	}
	t.Logf("%d ties", ties)
	for _, v := range vs {
		sameAsStrconv(t, v)
	}
}

// TestAppendFloatRandom compares appendFloat with strconv on a few million float32: uniform in (0, 1], spread
// evenly over the exponents of that range (where softmax outputs lie), and any bits at all.
func TestAppendFloatRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 1 << 21
	if testing.Short() {
		n = 1 << 19
	}
	for range n {
		sameAsStrconv(t, rng.Float32())
		sameAsStrconv(t, math.Float32frombits(rng.Uint32N(0x3f800001)))
		if !sameAsStrconv(t, math.Float32frombits(rng.Uint32())) {
			break
		}
		if t.Failed() {
			break
		}
	}
}

// TestAppendFloatEveryProbability compares appendFloat with strconv on every float32 in [0, 1], about a billion.
// It takes minutes, so it runs only with PERCEPTRON_EVERY_FLOAT32=1.
func TestAppendFloatEveryProbability(t *testing.T) {
	if os.Getenv("PERCEPTRON_EVERY_FLOAT32") != "1" {
		t.Skip("set PERCEPTRON_EVERY_FLOAT32=1 to compare every float32 in [0, 1] with strconv")
	}
	const last = 0x3f800000 // 1
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []uint32
	for w := range workers {
		wg.Go(func() {
			var got, want []byte
			for fb := uint32(w); fb <= last; fb += uint32(workers) {
				v := math.Float32frombits(fb)
				got = appendFloat(got[:0], v)
				want = strconv.AppendFloat(want[:0], float64(v), 'g', 6, 32)
				if string(got) != string(want) {
					mu.Lock()
					bad = append(bad, fb)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for i, fb := range bad {
		if i == 20 {
			t.Fatalf("... %d in all", len(bad))
		}
		sameAsStrconv(t, math.Float32frombits(fb))
	}
	t.Logf("%d float32 values compared", last+1)
}

// FuzzAppendFloat compares appendFloat with strconv on any float32.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float32{0, 1, 0.5, 1e-4, 9.999995e-05, 0.1015625, 0.999999, 1.17549435e-38, 3.4e38} {
		f.Add(math.Float32bits(v))
	}
	f.Fuzz(func(t *testing.T, fb uint32) {
		sameAsStrconv(t, math.Float32frombits(fb))
	})
}

// BenchmarkAppendFloat formats probabilities as a softmax gives them, spread over the exponents of (0, 1], with
// appendFloat and with strconv.
func BenchmarkAppendFloat(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	vs := make([]float32, 1024)
	for i := range vs {
		vs[i] = float32(math.Exp(-rng.Float64() * 30))
	}
	for _, c := range []struct {
		name string
		f    func([]byte, float32) []byte
	}{
		{"appendFloat", appendFloat},
		{"strconv", func(b []byte, v float32) []byte { return strconv.AppendFloat(b, float64(v), 'g', 6, 32) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var buf []byte
			i := 0
			for b.Loop() {
				buf = c.f(buf[:0], vs[i&1023])
				i++
			}
		})
	}
}
