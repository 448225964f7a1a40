package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// ECEBins is the number of equal-width confidence bins of the expected calibration error, the usual 15.
const ECEBins = 15

// DefaultRejectCorrect is the share of the held-out examples the network classifies correctly that the default
// threshold may reject: the threshold is that quantile of their calibrated confidence. Uploads are harder than the
// held-out split (every upload form loses a little confidence), so the share is kept well under the 1% that the
// service promises for correct digits through any upload form.
const DefaultRejectCorrect = 0.002

// Calibrate fits a temperature to net on the held-out set s (temperature scaling: the one value that minimises the
// negative log-likelihood of s's labels under softmax(logits / T)), picks the default threshold (see
// DefaultRejectCorrect), and returns them with the expected calibration error of s before and after. It does not
// change net. s must have net's input size and at most its classes; it should be data the weights were not fitted
// to, or the temperature learns the training set's overconfidence.
func Calibrate(net *model.Network, s *dataset.Set, serial bool) (*model.Calibration, error) {
	c, err := logitsOf(net, s, serial)
	if err != nil {
		return nil, err
	}
	if s.Len() == 0 {
		return nil, fmt.Errorf("calibrate: no held-out examples")
	}
	t := c.fitTemperature()
	return &model.Calibration{
		Temperature:   t,
		MinConfidence: c.threshold(t, DefaultRejectCorrect),
		Examples:      s.Len(),
		ECEBefore:     round(c.ece(1), 1e5),
		ECEAfter:      round(c.ece(t), 1e5),
	}, nil
}

// ECE returns the expected calibration error (ECEBins bins) of net's probabilities on s, as net serves them
// (with its temperature).
func ECE(net *model.Network, s *dataset.Set) (float64, error) {
	c, err := logitsOf(net, s, false)
	if err != nil {
		return 0, err
	}
	return c.ece(net.Temperature()), nil
}

// logitsOf runs s through net in large batches and keeps the output layer's values.
func logitsOf(net *model.Network, s *dataset.Set, serial bool) (logitSet, error) {
	classes, f := net.MLP.Classes(), s.Features()
	if f != net.MLP.Inputs() || len(s.Classes) > classes {
		return logitSet{}, fmt.Errorf("data set of %d classes of %d inputs does not fit a network of %d classes of %d inputs",
			len(s.Classes), f, classes, net.MLP.Inputs())
	}
	z := make([]float64, 0, s.Len()*classes)
	ws := model.Workspace[float32]{Serial: serial}
	x := make([]float32, min(evalChunk, s.Len())*f)
	for lo := 0; lo < s.Len(); lo += evalChunk {
		hi := min(lo+evalChunk, s.Len())
		for i := lo; i < hi; i++ {
			s.Inputs(x[(i-lo)*f:(i-lo+1)*f], i)
		}
		for _, v := range net.MLP.Logits(x, hi-lo, &ws) {
			z = append(z, float64(v))
		}
	}
	return logitSet{z: z, y: s.Y, classes: classes}, nil
}

// round rounds v to a multiple of 1/scale (scale a power of ten), so the model header reads well.
func round(v, scale float64) float64 { return math.Round(v*scale) / scale }

// logitSet is the output layer's values of n examples (row-major, classes per row) with their labels.
type logitSet struct {
	z       []float64
	y       []uint8
	classes int
}

func (c logitSet) row(i int) []float64 { return c.z[i*c.classes : (i+1)*c.classes] }

// softmaxT writes softmax(z / t) into p and returns the log-probability of class y.
func softmaxT(p, z []float64, t float64, y int) float64 {
	m := slices.Max(z)
	var sum float64
	for j, v := range z {
		p[j] = math.Exp((v - m) / t)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
	return (z[y]-m)/t - math.Log(sum)
}

// nll is the mean negative log-likelihood of the labels at temperature t.
func (c logitSet) nll(t float64) float64 {
	p := make([]float64, c.classes)
	var sum float64
	for i := range c.y {
		sum -= softmaxT(p, c.row(i), t, int(c.y[i]))
	}
	return sum / float64(len(c.y))
}

// fitTemperature minimises the NLL over the temperature by golden-section search on log T. The NLL is convex in 1/T
// (a log-sum-exp minus a linear term), so it has one minimum along any monotone reparametrisation, and the search
// finds it to within 1e-6 relative in a fixed number of steps, deterministically. The result is rounded to four
// decimals for the header.
func (c logitSet) fitTemperature() float64 {
	const phi = 0.6180339887498949
	lo, hi := math.Log(model.MinTemperature), math.Log(model.MaxTemperature)
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := c.nll(math.Exp(a)), c.nll(math.Exp(b))
	for hi-lo > 1e-6 {
		if fa <= fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = c.nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = c.nll(math.Exp(b))
		}
	}
	t := round(math.Exp((lo+hi)/2), 1e4)
	return min(max(t, model.MinTemperature), model.MaxTemperature)
}

// ece is the expected calibration error at temperature t: the examples binned by confidence (the top probability)
// into ECEBins equal-width bins, the mean over bins, weighted by their share, of |accuracy - mean confidence|.
func (c logitSet) ece(t float64) float64 {
	var count [ECEBins]int
	var conf, correct [ECEBins]float64
	p := make([]float64, c.classes)
	for i := range c.y {
		softmaxT(p, c.row(i), t, int(c.y[i]))
		best := model.Argmax(p)
		b := min(int(p[best]*ECEBins), ECEBins-1)
		count[b]++
		conf[b] += p[best]
		if best == int(c.y[i]) {
			correct[b]++
		}
	}
	var e float64
	for b := range ECEBins {
		if count[b] > 0 {
			e += math.Abs(correct[b]-conf[b]) / float64(len(c.y))
		}
	}
	return e
}

// threshold returns the confidence below which a share reject of the correctly classified examples fall at
// temperature t, rounded down to four decimals; 0 when none is correct.
func (c logitSet) threshold(t, reject float64) float64 {
	var confs []float64
	p := make([]float64, c.classes)
	for i := range c.y {
		softmaxT(p, c.row(i), t, int(c.y[i]))
		if best := model.Argmax(p); best == int(c.y[i]) {
			confs = append(confs, p[best])
		}
	}
	if len(confs) == 0 {
		return 0
	}
	slices.Sort(confs)
	q := confs[int(reject*float64(len(confs)))]
	return math.Floor(q*1e4) / 1e4
}
