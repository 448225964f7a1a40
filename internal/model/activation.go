package model

import (
	"fmt"
	"math"

	"github.com/perceptron-dev/perceptron/internal/gemm"
)

// Float is the element type of a network's numbers: float32 for serving and training, float64 where precision
// matters more than speed (gradient checks).
type Float interface{ float32 | float64 }

// Activation is the non-linearity of the hidden layers. The output layer is always softmax.
type Activation uint8

// The hidden-layer activations.
const (
	ReLU Activation = iota + 1
	Sigmoid
	Tanh
)

var activationNames = map[Activation]string{ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}

func (a Activation) String() string {
	if s, ok := activationNames[a]; ok {
		return s
	}
	return fmt.Sprintf("Activation(%d)", uint8(a))
}

// ParseActivation returns the activation called s ("relu", "sigmoid" or "tanh").
func ParseActivation(s string) (Activation, error) {
	for a, name := range activationNames {
		if name == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (want relu, sigmoid or tanh)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Activation) MarshalText() ([]byte, error) {
	if _, ok := activationNames[a]; !ok {
		return nil, fmt.Errorf("invalid activation %d", uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Activation) UnmarshalText(b []byte) error {
	v, err := ParseActivation(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Apply replaces every value of v with the activation of it.
func Apply[T Float](a Activation, v []T) {
	switch a {
	case ReLU:
		if f, ok := any(v).([]float32); ok {
			gemm.ReLU(f)
			return
		}
		for i, x := range v {
			v[i] = max(x, 0)
		}
	case Sigmoid:
		for i, x := range v {
			v[i] = T(1 / (1 + math.Exp(-float64(x))))
		}
	case Tanh:
		for i, x := range v {
			v[i] = T(math.Tanh(float64(x)))
		}
	default:
		panic("model: invalid activation " + a.String())
	}
}

// MulDerivative multiplies every delta[i] by the activation's derivative at the point where it produced out[i].
// All three derivatives are functions of the output, so training keeps no pre-activation values.
func MulDerivative[T Float](a Activation, delta, out []T) {
	out = out[:len(delta)]
	switch a {
	case ReLU:
		for i, y := range out {
			if y <= 0 {
				delta[i] = 0
			}
		}
	case Sigmoid:
		for i, y := range out {
			delta[i] *= y * (1 - y)
		}
	case Tanh:
		for i, y := range out {
			delta[i] *= 1 - y*y
		}
	default:
		panic("model: invalid activation " + a.String())
	}
}

// Softmax turns each row of the rows x cols matrix v into probabilities, in place. It subtracts the row maximum
// first so large logits cannot overflow.
func Softmax[T Float](v []T, rows, cols int) {
	for r := range rows {
		row := v[r*cols : (r+1)*cols]
		m := row[0]
		for _, x := range row[1:] {
			m = max(m, x)
		}
		var sum float64
		for i, x := range row {
			e := math.Exp(float64(x - m))
			row[i] = T(e)
			sum += e
		}
		inv := 1 / sum
		for i := range row {
			row[i] = T(float64(row[i]) * inv)
		}
	}
}
