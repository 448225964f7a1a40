package model

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// naiveForward computes one example's probabilities in float64 with plain loops, as the reference.
func naiveForward(m *MLP[float32], x []float32) []float64 {
	in := make([]float64, len(x))
	for i, v := range x {
		in[i] = float64(v)
	}
	for li, l := range m.Layers {
		out := make([]float64, l.Out)
		for j := range l.Out {
			s := float64(l.B[j])
			for i := range l.In {
				s += in[i] * float64(l.W[i*l.Out+j])
			}
			out[j] = s
		}
		if li < len(m.Layers)-1 {
			for j, v := range out {
				switch m.Activation {
				case ReLU:
					out[j] = math.Max(v, 0)
				case Sigmoid:
					out[j] = 1 / (1 + math.Exp(-v))
				case Tanh:
					out[j] = math.Tanh(v)
				}
			}
		} else {
			mx := math.Inf(-1)
			for _, v := range out {
				mx = math.Max(mx, v)
			}
			var sum float64
			for j, v := range out {
				out[j] = math.Exp(v - mx)
				sum += out[j]
			}
			for j := range out {
				out[j] /= sum
			}
		}
		in = out
	}
	return in
}

func randomNet(t testing.TB, sizes []int, act Activation, seed uint64) *MLP[float32] {
	t.Helper()
	m := NewMLP[float32](sizes, act)
	rng := rand.New(rand.NewPCG(seed, 2))
	m.Init(rng)
	for _, l := range m.Layers {
		for i := range l.B {
			l.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	return m
}

func randomInputs(n, f int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n*f)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func TestForwardMatchesPerExampleReference(t *testing.T) {
	for _, act := range []Activation{ReLU, Sigmoid, Tanh} {
		for _, sizes := range [][]int{{784, 10}, {784, 128, 64, 10}, {5, 3, 7, 2, 4}} {
			for _, n := range []int{1, 7, 64} {
				m := randomNet(t, sizes, act, 1)
				x := randomInputs(n, sizes[0], 2)
				var ws Workspace[float32]
				got := m.Forward(x, n, &ws)
				c := m.Classes()
				for i := range n {
					want := naiveForward(m, x[i*sizes[0]:(i+1)*sizes[0]])
					var sum float64
					for j := range c {
						sum += float64(got[i*c+j])
						if d := math.Abs(float64(got[i*c+j]) - want[j]); d > 1e-5 {
							t.Fatalf("%v %v n=%d: example %d class %d: got %v; want %v", act, sizes, n, i, j, got[i*c+j], want[j])
						}
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Errorf("%v %v n=%d: probabilities of example %d sum to %v; want 1", act, sizes, n, i, sum)
					}
				}
			}
		}
	}
}

func TestSoftmaxDoesNotOverflow(t *testing.T) {
	v := []float32{1000, 1000, -1000, 88, 89}
	Softmax(v, 1, 5)
	for i, p := range v {
		if math.IsNaN(float64(p)) || p < 0 || p > 1 {
			t.Fatalf("p[%d] = %v", i, p)
		}
	}
	if math.Abs(float64(v[0])-0.5) > 1e-6 {
		t.Errorf("p[0] = %v; want 0.5", v[0])
	}
}

func TestForwardIsSafeForConcurrentUse(t *testing.T) {
	m := randomNet(t, []int{784, 64, 10}, ReLU, 4)
	x := randomInputs(16, 784, 5)
	var ref Workspace[float32]
	want := append([]float32(nil), m.Forward(x, 16, &ref)...)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ws := Workspace[float32]{Serial: g%2 == 0}
			for range 20 {
				got := m.Forward(x, 16, &ws)
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("goroutine %d: output %d = %v; want %v", g, i, got[i], want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestForwardReusesItsBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (sync.Pool drops items); CI runs this without -race")
	}
	m := randomNet(t, []int{784, 128, 64, 10}, ReLU, 6)
	x := randomInputs(32, 784, 7)
	ws := Workspace[float32]{Serial: true}
	m.Forward(x, 32, &ws)
	if a := testing.AllocsPerRun(50, func() { m.Forward(x, 32, &ws) }); a != 0 {
		t.Errorf("Forward allocates %v times per call after the first; want 0", a)
	}
}

func TestCheckArchitecture(t *testing.T) {
	for _, tt := range []struct {
		sizes []int
		ok    bool
	}{
		{[]int{784, 10}, true},
		{[]int{784, 256, 128, 10}, true},
		{[]int{784}, false},
		{[]int{784, 0, 10}, false},
		{[]int{784, 1}, false},
		{[]int{784, MaxWidth + 1, 10}, false},
		{[]int{MaxWidth, MaxWidth, 10}, false}, // too many parameters
		{make([]int, MaxLayers+2), false},
	} {
		if err := CheckArchitecture(tt.sizes); (err == nil) != tt.ok {
			t.Errorf("CheckArchitecture(%v) = %v; want ok=%v", tt.sizes, err, tt.ok)
		}
	}
}

func BenchmarkForward(b *testing.B) {
	for _, sizes := range [][]int{{784, 128, 64, 10}, {784, 256, 128, 10}} {
		m := randomNet(b, sizes, ReLU, 1)
		flops := 0
		for _, l := range m.Layers {
			flops += 2 * l.In * l.Out
		}
		for _, n := range []int{1, 32, 256} {
			for _, serial := range []bool{true, false} {
				name := "arch=" + joinSizes(sizes) + "/batch=" + strconv.Itoa(n)
				if serial {
					name += "/serial"
				}
				b.Run(name, func(b *testing.B) {
					x := randomInputs(n, 784, 2)
					ws := Workspace[float32]{Serial: serial}
					b.ReportAllocs()
					for b.Loop() {
						m.Forward(x, n, &ws)
					}
					secs := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(flops*n)/secs/1e9, "GFLOP/s")
					b.ReportMetric(secs*1e6/float64(n), "µs/example")
				})
			}
		}
	}
}

func joinSizes(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, "-")
}
