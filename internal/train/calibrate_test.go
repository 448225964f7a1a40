package train

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// sampledLogits draws n examples whose labels follow softmax(z / temp): a network whose logits z are overconfident
// by exactly temp.
func sampledLogits(n, classes int, temp float64, rng *rand.Rand) logitSet {
	c := logitSet{z: make([]float64, n*classes), y: make([]uint8, n), classes: classes}
	p := make([]float64, classes)
	for i := range n {
		z := c.row(i)
		for j := range z {
			z[j] = 4 * rng.NormFloat64()
		}
		softmaxT(p, z, temp, 0)
		u := rng.Float64()
		for j := range p {
			if u -= p[j]; u < 0 || j == classes-1 {
				c.y[i] = uint8(j)
				break
			}
		}
	}
	return c
}

func TestFitTemperatureRecoversTheTemperatureOfTheData(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, want := range []float64{0.5, 1, 2, 4} {
		c := sampledLogits(20000, 10, want, rng)
		got := c.fitTemperature()
		if math.Abs(got-want)/want > 0.08 {
			t.Errorf("fitted temperature %v; want %v within 8%%", got, want)
		}
		if c.ece(got) > c.ece(1)+1e-9 && want != 1 {
			t.Errorf("T=%v: ECE %v at the fitted temperature, worse than %v uncalibrated", want, c.ece(got), c.ece(1))
		}
	}
}

func TestECEIsTheGapBetweenConfidenceAndAccuracy(t *testing.T) {
	// Two classes, logits (ln 4, 0): confidence 0.8 in class 0 for every example.
	const n = 1000
	for _, tt := range []struct {
		name    string
		correct int
		want    float64
	}{
		{"80% right at 80% confidence is calibrated", 800, 0},
		{"all right at 80% confidence is underconfident by 0.2", 1000, 0.2},
		{"half right at 80% confidence is overconfident by 0.3", 500, 0.3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := logitSet{z: make([]float64, 2*n), y: make([]uint8, n), classes: 2}
			for i := range n {
				c.z[2*i] = math.Log(4)
				if i >= tt.correct {
					c.y[i] = 1
				}
			}
			if got := c.ece(1); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("ECE = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestThresholdRejectsTheGivenShareOfCorrectAnswers(t *testing.T) {
	c := sampledLogits(20000, 10, 2, rand.New(rand.NewPCG(6, 6)))
	temp := c.fitTemperature()
	th := c.threshold(temp, 0.01)
	p := make([]float64, c.classes)
	correct, below := 0, 0
	for i := range c.y {
		softmaxT(p, c.row(i), temp, 0)
		if best := argmax(p); best == int(c.y[i]) {
			correct++
			if p[best] < th {
				below++
			}
		}
	}
	if share := float64(below) / float64(correct); share > 0.01 || share < 0.009 {
		t.Errorf("threshold %v rejects %.4f of the correct answers; want 0.01", th, share)
	}
}

func argmax(p []float64) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

func TestTrainingCalibratesOnTheHeldOutSplitAndCalibrateAgainAgrees(t *testing.T) {
	trainSet, testSet := loadMNIST(t)
	req := smallRequest()
	res, err := Train(context.Background(), req, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	net := res.Network
	cal := net.Calibration
	if cal == nil {
		t.Fatal("a model trained with a validation split is not calibrated")
	}
	if val := HeldOut(req, trainSet); val.Len() != cal.Examples || val.Len() != res.Validation.Len() {
		t.Errorf("HeldOut gives %d examples, Train held out %d and calibrated on %d", val.Len(), res.Validation.Len(), cal.Examples)
	}
	again, err := Calibrate(net, HeldOut(req, trainSet), false)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *cal {
		t.Errorf("calibrating again on HeldOut gives %+v; training stored %+v", *again, *cal)
	}
	if cal.ECEAfter > cal.ECEBefore {
		t.Errorf("held-out ECE %v after calibration, worse than %v before", cal.ECEAfter, cal.ECEBefore)
	}
	if cal.MinConfidence <= 0 || cal.MinConfidence >= 1 {
		t.Errorf("default threshold %v; want within (0, 1)", cal.MinConfidence)
	}
	raw := *net
	raw.Calibration = nil
	before, _ := ECE(&raw, testSet)
	after, _ := ECE(net, testSet)
	t.Logf("T=%.4f; test ECE %.4f before, %.4f after", cal.Temperature, before, after)
	if after > before+0.005 {
		t.Errorf("test ECE %v after calibration; want no worse than %v before (tolerance 0.005)", after, before)
	}

	noSplit := req
	noSplit.ValidationSplit = 0
	res, err = Train(context.Background(), noSplit, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Network.Calibration != nil {
		t.Errorf("a model trained without held-out data is calibrated: %+v", res.Network.Calibration)
	}
}
