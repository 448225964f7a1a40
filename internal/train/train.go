package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Epoch is the report of one finished epoch.
type Epoch struct {
	Epoch         int     `json:"epoch"`
	Loss          float64 `json:"loss"`           // mean training loss over the epoch's mini-batches
	TrainAccuracy float64 `json:"train_accuracy"` // fraction of training examples classified right during the epoch
	ValLoss       float64 `json:"val_loss,omitempty"`
	ValAccuracy   float64 `json:"val_accuracy,omitempty"` // on the held-out split; 0 without one
	Seconds       float64 `json:"seconds"`                // training time of the epoch, validation excluded
}

// Progress is reported within an epoch, about a hundred times per epoch.
type Progress struct {
	Epoch         int     // 1-based epoch in progress
	Epochs        int     // epochs requested
	Fraction      float64 // of the whole run, 0..1
	Loss          float64 // running mean loss of the epoch so far
	TrainAccuracy float64 // running accuracy of the epoch so far
	ETA           time.Duration
}

// Options are the callbacks of a run. Nil callbacks are not called.
type Options struct {
	OnEpoch func(Epoch)
	// Inspect is called after OnEpoch with the network as it stands (the weights keep changing after it returns):
	// for measurements such as test accuracy per epoch, which must not count as training time.
	Inspect    func(Epoch, *model.Network)
	OnProgress func(Progress)
	// Input describes the images the data set holds (size and preprocessing), recorded in the model.
	Input model.Input
	// Name of the produced model; the data set's name followed by "-mlp" when empty.
	Name string
	// Serial keeps all the work on the calling goroutine, one core, so training can run beside serving without
	// taking every core. The zero value uses them all.
	Serial bool
}

// Result is a trained network with the history of its run.
type Result struct {
	Network *model.Network
	History []Epoch
	// StoppedEarly says the run ended before Epochs because validation accuracy stopped improving.
	StoppedEarly bool
	// Validation is the held-out split, nil without one, so a caller can compare another model on the same data.
	Validation *dataset.Set
}

// errStop ends an optimisation early without being an error of the run.
var errStop = errors.New("stop")

// Train fits a new network to data as req says. It returns the context's error, and no network, when ctx is
// cancelled; a cancelled run stops within one mini-batch (one chunk of examples for L-BFGS). With a validation split
// and early stopping, the returned network has the weights of the epoch with the best validation accuracy. With a
// validation split, the network is calibrated on it (see Calibrate); without one it is left uncalibrated.
func Train(ctx context.Context, req Request, data *dataset.Set, opts Options) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := data.Validate(); err != nil {
		return nil, err
	}
	req = req.Resolve(data.Len())
	act, _ := model.ParseActivation(req.Activation)
	rng, trainSet, valSet := split(req, data)
	if trainSet.Len() == 0 {
		return nil, invalid("no training examples")
	}

	sizes := append(append([]int{data.Features()}, req.Hidden...), len(data.Classes))
	if err := model.CheckArchitecture(sizes); err != nil {
		return nil, invalid("%v", err)
	}
	input := opts.Input
	if input.Width == 0 {
		input = model.Input{Width: data.Cols, Height: data.Rows, Preprocess: model.PreprocessMNIST}
	}
	name := opts.Name
	if name == "" {
		name = req.Dataset + "-mlp"
	}
	hyper, _ := json.Marshal(req)
	net, err := model.New(model.Info{
		Name: name, Created: time.Now().UTC(), Layers: sizes, Activation: act, Labels: data.Classes,
		Input: input, Dataset: req.Dataset, Hyperparameters: hyper,
	}, rng)
	if err != nil {
		return nil, invalid("%v", err)
	}

	r := &run{req: req, opts: opts, net: net, train: trainSet, val: valSet, rng: rng, start: time.Now()}
	if req.Optimizer == "lbfgs" {
		err = r.lbfgs(ctx)
	} else {
		err = r.minibatch(ctx)
	}
	if err != nil {
		return nil, err
	}
	if r.best != nil {
		copy(net.MLP.Params, r.best)
	}
	if valSet != nil {
		// The held-out split has the network's shape by construction, so this cannot fail.
		if net.Calibration, err = Calibrate(net, valSet, opts.Serial); err != nil {
			return nil, err
		}
	}
	last := r.history[len(r.history)-1]
	net.Metrics = model.Metrics{
		TrainAccuracy: last.TrainAccuracy, Loss: last.Loss, Epochs: len(r.history),
		ValidationAccuracy: r.bestAcc, TrainSeconds: r.trainSeconds,
	}
	return &Result{Network: net, History: r.history, StoppedEarly: r.stoppedEarly, Validation: valSet}, nil
}

// split makes the seeded random source of a run and with it the run's training and held-out parts of data.
func split(req Request, data *dataset.Set) (rng *rand.Rand, trainSet, valSet *dataset.Set) {
	req = req.Resolve(data.Len())
	rng = rand.New(rand.NewPCG(req.Seed, req.Seed^0x9e3779b97f4a7c15))
	trainSet, valSet = data.Head(req.Limit).Split(req.ValidationSplit, rng)
	return rng, trainSet, valSet
}

// HeldOut returns the validation split that Train holds out of data for req (nil without one): the same examples
// every time, so a model can be calibrated again, later, on exactly the data its training never fitted.
func HeldOut(req Request, data *dataset.Set) *dataset.Set {
	_, _, val := split(req, data)
	return val
}

// Split returns the training and held-out parts Train makes of data for req (a nil held-out part without one).
func Split(req Request, data *dataset.Set) (trainSet, valSet *dataset.Set) {
	_, trainSet, valSet = split(req, data)
	return trainSet, valSet
}

// run is the state of one training run.
type run struct {
	req        Request
	opts       Options
	net        *model.Network
	train, val *dataset.Set
	rng        *rand.Rand
	start      time.Time

	history      []Epoch
	trainSeconds float64
	best         []float32 // weights of the best epoch by validation accuracy
	bestAcc      float64
	sinceBest    int
	stoppedEarly bool
}

func (r *run) minibatch(ctx context.Context) error {
	var opt optimizer
	switch r.req.Optimizer {
	case "sgd":
		opt = &sgd{lr: float32(r.req.LearningRate), mu: float32(r.req.Momentum), serial: r.opts.Serial}
	default:
		opt = newAdam(r.req.LearningRate, r.opts.Serial)
	}
	n, f := r.train.Len(), r.train.Features()
	bs := min(r.req.BatchSize, n)
	batches := (n + bs - 1) / bs
	x := make([]float32, bs*f)
	y := make([]uint8, bs)
	grad := make([]float32, len(r.net.MLP.Params))
	bp := Backprop[float32]{Serial: r.opts.Serial}
	report := max(batches/100, 1)

	for epoch := 1; epoch <= r.req.Epochs; epoch++ {
		t0 := time.Now()
		perm := r.rng.Perm(n)
		var lossSum float64
		correct, seen := 0, 0
		for b := range batches {
			if err := ctx.Err(); err != nil {
				return err
			}
			idx := perm[b*bs : min((b+1)*bs, n)]
			for i, j := range idx {
				if r.req.Augment {
					augment(x[i*f:(i+1)*f], r.train.Image(j), r.train.Rows, r.train.Cols, r.train.ChannelCount(), r.rng)
				} else {
					r.train.Inputs(x[i*f:(i+1)*f], j)
				}
				y[i] = r.train.Y[j]
			}
			loss, c := bp.Gradient(r.net.MLP, x, y, len(idx), r.req.L2, grad)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return fmt.Errorf("training diverged in epoch %d (loss %v): lower the learning rate", epoch, loss)
			}
			opt.step(r.net.MLP.Params, grad)
			lossSum += loss * float64(len(idx))
			correct += c
			seen += len(idx)
			if r.opts.OnProgress != nil && (b+1)%report == 0 {
				r.progress(epoch, float64(b+1)/float64(batches), lossSum/float64(seen), float64(correct)/float64(seen))
			}
		}
		secs := time.Since(t0).Seconds()
		if r.endEpoch(Epoch{Epoch: epoch, Loss: lossSum / float64(seen), TrainAccuracy: float64(correct) / float64(seen), Seconds: secs}) {
			break
		}
	}
	return nil
}

func (r *run) progress(epoch int, within, loss, acc float64) {
	frac := (float64(epoch-1) + within) / float64(r.req.Epochs)
	var eta time.Duration
	if frac > 0 {
		eta = time.Duration(float64(time.Since(r.start)) * (1 - frac) / frac)
	}
	r.opts.OnProgress(Progress{Epoch: epoch, Epochs: r.req.Epochs, Fraction: frac, Loss: loss, TrainAccuracy: acc, ETA: eta})
}

// endEpoch validates, records and reports an epoch, and says whether early stopping ends the run.
func (r *run) endEpoch(e Epoch) (stop bool) {
	r.trainSeconds += e.Seconds
	if r.val != nil {
		ev, _ := evaluate(r.net, r.val, r.opts.Serial) // the split has the network's shape by construction
		e.ValAccuracy, e.ValLoss = ev.Accuracy, ev.Loss
		if r.best == nil || e.ValAccuracy > r.bestAcc {
			r.best = append(r.best[:0], r.net.MLP.Params...)
			r.bestAcc, r.sinceBest = e.ValAccuracy, 0
		} else {
			r.sinceBest++
		}
	}
	r.history = append(r.history, e)
	if r.opts.OnEpoch != nil {
		r.opts.OnEpoch(e)
	}
	if r.opts.Inspect != nil {
		r.opts.Inspect(e, r.net)
	}
	if p := r.req.EarlyStoppingPatience; p > 0 && r.val != nil && r.sinceBest >= p && e.Epoch < r.req.Epochs {
		r.stoppedEarly = true
		return true
	}
	return false
}
