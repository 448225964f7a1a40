package train

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestGateTellsDigitsFromGeneratedNonDigits fits a small gate on a little data and checks what it is for: its
// threshold turns away about the asked share of held-out digits, it turns away most non-digits drawn from another
// seed, and the same options give the same gate whether the work is spread over the cores or not.
func TestGateTellsDigitsFromGeneratedNonDigits(t *testing.T) {
	if testing.Short() {
		t.Skip("fits two gates, a minute on one core: skipped under -short")
	}
	set := mnisttest.Train(t)
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	fit, held := set.Head(20000), set.Subset(rangeN(59000, 60000))
	o := GateOptions{Digits: 1500, NonDigits: 1500, Hidden: []int{16}, Epochs: 3, Seed: 5, Reject: 0.02}
	gf, err := FitGate(context.Background(), net, fit, held, o)
	if err != nil {
		t.Fatal(err)
	}
	g := gf.Gate
	if gf.HeldOut < 950 || g.Digits < 1400 || g.NonDigits < 1000 {
		t.Fatalf("%d held-out digits, trained on %d digits and %d non-digits: preprocessing dropped too many", gf.HeldOut, g.Digits, g.NonDigits)
	}
	if g.HeldOutRejected > o.Reject || g.HeldOutRejected < o.Reject/2 {
		t.Errorf("threshold %v turns away %.2f%% of held-out digits; want about %.0f%%", g.Threshold, 100*g.HeldOutRejected, 100*o.Reject)
	}

	// Non-digits the gate never saw: another seed's pictures of every family.
	rng := rand.New(rand.NewPCG(99, 99))
	spec := imageprep.Spec{Width: 28, Height: 28, Mode: imageprep.ModeMNIST}
	var ws model.Workspace[float32]
	x := make([]float32, 784)
	rejected, total := 0, 0
	for i := range 400 {
		c := negative(gateFamilies[i%len(gateFamilies)], rng, func(i int) []byte { return fit.Image(i) }, fit.Len(), 28, 28)
		if imageprep.Prepare(x, c.upload(rng), spec) != nil {
			continue
		}
		total++
		if g.NotADigit(gf.MLP.Forward(x, 1, &ws)[model.GateNotDigit]) {
			rejected++
		}
	}
	if total < 300 || float64(rejected) < 0.4*float64(total) {
		t.Errorf("the gate turns away %d of %d unseen non-digits; want at least 40%% (a gate that learnt nothing turns away about 2%%)", rejected, total)
	}
	t.Logf("threshold %.4f: %.2f%% of %d held-out digits and %d of %d unseen non-digits turned away",
		g.Threshold, 100*g.HeldOutRejected, gf.HeldOut, rejected, total)

	o.Serial = true
	again, err := FitGate(context.Background(), net, fit, held, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.MLP.Params, gf.MLP.Params) || again.Gate.Threshold != g.Threshold {
		t.Error("the same options gave another gate on one core")
	}
}

func rangeN(lo, hi int) []int {
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return idx
}

// TestNonDigitGeneratorDrawsEveryFamily checks that every family of the gate's negatives draws pictures with ink that
// preprocessing mostly keeps (a family it always drops would teach the gate nothing), and that the same seed draws
// the same picture.
func TestNonDigitGeneratorDrawsEveryFamily(t *testing.T) {
	digit := func(int) []byte {
		px := make([]byte, 784)
		for y := 6; y < 22; y++ { // a "1": a vertical bar
			px[y*28+13], px[y*28+14] = 255, 255
		}
		return px
	}
	spec := imageprep.Spec{Width: 28, Height: 28, Mode: imageprep.ModeMNIST}
	x := make([]float32, 784)
	for _, fam := range gateFamilies {
		kept := 0
		for i := range 20 {
			c := negative(fam, rand.New(rand.NewPCG(uint64(i), 1)), digit, 1, 28, 28)
			again := negative(fam, rand.New(rand.NewPCG(uint64(i), 1)), digit, 1, 28, 28)
			if !slices.Equal(c.v, again.v) {
				t.Fatalf("%s: the same seed drew two pictures", fam)
			}
			if imageprep.Prepare(x, c.upload(rand.New(rand.NewPCG(uint64(i), 2))), spec) == nil {
				kept++
			}
		}
		if kept < 10 {
			t.Errorf("%s: preprocessing found a digit-like drawing in %d of 20 pictures; want most", fam, kept)
		}
	}
}
