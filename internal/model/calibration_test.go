package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTemperatureDividesTheLogitsBeforeTheSoftmax(t *testing.T) {
	n := testNetwork(t)
	rng := rand.New(rand.NewPCG(3, 3))
	const batch = 4
	x := make([]float32, batch*n.MLP.Inputs())
	for i := range x {
		x[i] = rng.Float32()
	}
	var ws Workspace[float32]
	logits := append([]float32(nil), n.MLP.Logits(x, batch, &ws)...)
	for _, temp := range []float64{0.5, 1, 2.5} {
		n.Calibration = &Calibration{Temperature: temp}
		probs := n.Forward(x, batch, &ws)
		classes := n.MLP.Classes()
		for r := range batch {
			z := logits[r*classes : (r+1)*classes]
			m := math.Inf(-1)
			for _, v := range z {
				m = max(m, float64(v)/temp)
			}
			var sum float64
			for _, v := range z {
				sum += math.Exp(float64(v)/temp - m)
			}
			for j, v := range z {
				want := math.Exp(float64(v)/temp-m) / sum
				if got := float64(probs[r*classes+j]); math.Abs(got-want) > 1e-6 {
					t.Fatalf("T=%v row %d class %d: got %v; want softmax(z/T) = %v", temp, r, j, got, want)
				}
			}
		}
	}
}

func TestUncalibratedProbabilitiesAreBitForBitThePlainSoftmax(t *testing.T) {
	n := testNetwork(t)
	x := make([]float32, 2*n.MLP.Inputs())
	for i := range x {
		x[i] = float32(i%7) / 7
	}
	var ws1, ws2 Workspace[float32]
	plain := n.MLP.Forward(x, 2, &ws1)
	n.Calibration = &Calibration{Temperature: 1, MinConfidence: 0.5}
	served := n.Forward(x, 2, &ws2)
	for i := range plain {
		if math.Float32bits(plain[i]) != math.Float32bits(served[i]) {
			t.Fatalf("probability %d = %v at temperature 1; want the plain softmax's %v", i, served[i], plain[i])
		}
	}
}

func TestCalibrationIsStoredAndOptional(t *testing.T) {
	n := testNetwork(t)
	plain, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte("calibration")) {
		t.Errorf("an uncalibrated model's header mentions calibration; files without it must stay as they were")
	}
	got, err := Unmarshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got.Calibration != nil || got.Temperature() != 1 || got.MinConfidence() != 0 {
		t.Errorf("uncalibrated file: calibration %+v, temperature %v, min confidence %v; want nil, 1, 0",
			got.Calibration, got.Temperature(), got.MinConfidence())
	}
	again, _ := Marshal(got)
	if !bytes.Equal(again, plain) {
		t.Errorf("an uncalibrated file re-encoded differs from the original")
	}

	n.Calibration = &Calibration{Temperature: 1.25, MinConfidence: 0.6, Examples: 6000, ECEBefore: 0.02, ECEAfter: 0.005}
	data, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	got, err = Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Calibration == nil || *got.Calibration != *n.Calibration {
		t.Errorf("calibration after round trip = %+v; want %+v", got.Calibration, n.Calibration)
	}
	if c := n.Clone(); c.Calibration == n.Calibration || *c.Calibration != *n.Calibration {
		t.Errorf("Clone shares or changes the calibration: %p %+v, original %p %+v", c.Calibration, c.Calibration, n.Calibration, n.Calibration)
	}
}

func TestDecodeRefusesBadCalibration(t *testing.T) {
	for _, tt := range []struct {
		name string
		cal  Calibration
		want string
	}{
		{"a zero temperature", Calibration{Temperature: 0}, "temperature"},
		{"a negative temperature", Calibration{Temperature: -1}, "temperature"},
		{"an absurd temperature", Calibration{Temperature: 1e6}, "temperature"},
		{"a threshold above 1", Calibration{Temperature: 1, MinConfidence: 1.5}, "min_confidence"},
		{"a negative threshold", Calibration{Temperature: 1, MinConfidence: -0.1}, "min_confidence"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := testNetwork(t)
			n.Calibration = &tt.cal
			header, _ := json.Marshal(n.Info)
			data := build(fileMagic, FormatVersion, header, uint64(len(n.MLP.Params)), make([]byte, 4*len(n.MLP.Params)))
			_, err := Unmarshal(data)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an ErrFormat about %s", err, tt.want)
			}
		})
	}
}
