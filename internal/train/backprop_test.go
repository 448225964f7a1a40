package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestGradientMatchesFiniteDifferences checks every partial derivative of the loss, for every activation, against a
// central finite difference in float64. A wrong backward formula anywhere (activation derivative, softmax, bias,
// L2, the transposes of the products) makes some component disagree by far more than the tolerance.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	const (
		h   = 1e-6
		tol = 1e-5
	)
	for _, act := range []model.Activation{model.ReLU, model.Sigmoid, model.Tanh} {
		for _, l2 := range []float64{0, 0.01} {
			t.Run(act.String()+"/l2="+map[bool]string{true: "0.01", false: "0"}[l2 > 0], func(t *testing.T) {
				sizes := []int{6, 5, 4, 3}
				m := model.NewMLP[float64](sizes, act)
				rng := rand.New(rand.NewPCG(7, uint64(act)))
				m.Init(rng)
				for i := range m.Params {
					m.Params[i] += rng.NormFloat64() * 0.1 // non-zero biases, and weights off any special point
				}
				const n = 5
				x := make([]float64, n*sizes[0])
				for i := range x {
					x[i] = rng.Float64()
				}
				y := []uint8{0, 2, 1, 2, 0}

				var bp Backprop[float64]
				grad := make([]float64, len(m.Params))
				bp.Gradient(m, x, y, n, l2, grad)

				worst := 0.0
				for i := range m.Params {
					orig := m.Params[i]
					m.Params[i] = orig + h
					up := bp.Loss(m, x, y, n, l2)
					m.Params[i] = orig - h
					down := bp.Loss(m, x, y, n, l2)
					m.Params[i] = orig
					numeric := (up - down) / (2 * h)
					rel := math.Abs(numeric-grad[i]) / math.Max(math.Max(math.Abs(numeric), math.Abs(grad[i])), 1e-4)
					worst = math.Max(worst, rel)
					if rel > tol {
						t.Errorf("parameter %d: backprop %.10g, finite difference %.10g (relative error %.2g)", i, grad[i], numeric, rel)
					}
				}
				t.Logf("worst relative error %.2g over %d parameters", worst, len(m.Params))
			})
		}
	}
}

// TestGradientCheckCatchesAWrongFormula makes sure the check above has teeth: a gradient with one deliberately wrong
// component must fail it.
func TestGradientCheckCatchesAWrongFormula(t *testing.T) {
	m := model.NewMLP[float64]([]int{4, 3, 2}, model.Sigmoid)
	m.Init(rand.New(rand.NewPCG(1, 1)))
	x := []float64{0.1, 0.5, 0.9, 0.3}
	y := []uint8{1}
	var bp Backprop[float64]
	grad := make([]float64, len(m.Params))
	bp.Gradient(m, x, y, 1, 0, grad)
	// Pretend the sigmoid derivative were y instead of y(1-y): scale the first layer's gradient.
	grad[0] *= 1.5
	orig := m.Params[0]
	m.Params[0] = orig + 1e-6
	up := bp.Loss(m, x, y, 1, 0)
	m.Params[0] = orig - 1e-6
	down := bp.Loss(m, x, y, 1, 0)
	numeric := (up - down) / 2e-6
	if rel := math.Abs(numeric-grad[0]) / math.Abs(numeric); rel < 1e-5 {
		t.Errorf("a wrong gradient passed the check (relative error %.2g)", rel)
	}
}

func TestGradientInFloat32AgreesWithFloat64(t *testing.T) {
	sizes := []int{784, 32, 10}
	m64 := model.NewMLP[float64](sizes, model.ReLU)
	m64.Init(rand.New(rand.NewPCG(3, 3)))
	m32 := model.NewMLP[float32](sizes, model.ReLU)
	for i, p := range m64.Params {
		m32.Params[i] = float32(p)
	}
	const n = 64
	rng := rand.New(rand.NewPCG(4, 4))
	x64, x32 := make([]float64, n*784), make([]float32, n*784)
	for i := range x64 {
		x32[i] = float32(rng.Float64())
		x64[i] = float64(x32[i])
	}
	y := make([]uint8, n)
	for i := range y {
		y[i] = uint8(rng.IntN(10))
	}
	g64, g32 := make([]float64, len(m64.Params)), make([]float32, len(m32.Params))
	var b64 Backprop[float64]
	var b32 Backprop[float32]
	l64, _ := b64.Gradient(m64, x64, y, n, 0.001, g64)
	l32, _ := b32.Gradient(m32, x32, y, n, 0.001, g32)
	if math.Abs(l64-l32) > 1e-4 {
		t.Errorf("loss float32 %v, float64 %v", l32, l64)
	}
	for i := range g64 {
		if d := math.Abs(float64(g32[i]) - g64[i]); d > 1e-4 {
			t.Fatalf("gradient %d: float32 %v, float64 %v", i, g32[i], g64[i])
		}
	}
}
