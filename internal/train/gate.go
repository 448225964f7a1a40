package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// GateOptions say how a gate (model.Gate) is fitted.
type GateOptions struct {
	// Digits and NonDigits are how many pictures of each kind are drawn for training; fewer remain when
	// preprocessing finds no digit in some (they never reach a model, so the gate need not learn them).
	Digits, NonDigits int
	// Hidden are the gate network's hidden layer widths.
	Hidden []int
	Epochs int
	Seed   uint64
	// Reject is the share of held-out digits the threshold turns away.
	Reject float64
	// Serial keeps the work on the calling goroutine.
	Serial bool
}

// DefaultGateOptions are the options of the embedded model's gate.
func DefaultGateOptions() GateOptions {
	return GateOptions{Digits: 40000, NonDigits: 40000, Hidden: []int{64}, Epochs: 10, Seed: 1, Reject: 0.0025}
}

// GateFit is a fitted gate with what was measured on the held-out digits.
type GateFit struct {
	Gate *model.Gate
	MLP  *model.MLP[float32]
	// HeldOut is how many held-out digits the threshold was chosen on.
	HeldOut int
}

// FitGate trains a gate for net, a network with the mnist preprocessing: positives are digits of fit (the training
// part of net's data) and negatives are generated (letters in fonts and drawn by hand, several training digits side
// by side or overlapping, scribbles, outlines and filled shapes, textures), every one rendered as an upload and sent
// through imageprep as serving would, so the gate learns on the vectors the digit network is shown. The threshold is
// chosen on the digits of held (held out from both networks' training), rendered the same way. The same options
// give the same gate on any number of cores.
func FitGate(ctx context.Context, net *model.Network, fit, held *dataset.Set, o GateOptions) (*GateFit, error) {
	if net.Input.Preprocess != model.PreprocessMNIST || net.Input.Width != fit.Cols || net.Input.Height != fit.Rows {
		return nil, errors.New("a gate is fitted for models with the mnist preprocessing of their data's images")
	}
	if fit.Len() == 0 || held == nil || held.Len() == 0 {
		return nil, errors.New("a gate needs training digits and held-out digits")
	}
	if !(o.Reject > 0 && o.Reject < 0.5) || o.Digits < 1 || o.NonDigits < 1 || o.Epochs < 1 {
		return nil, fmt.Errorf("gate options %+v out of range", o)
	}
	rows, cols := fit.Rows, fit.Cols
	spec := imageprep.Spec{Width: cols, Height: rows, Mode: imageprep.ModeMNIST}
	digit := func(s *dataset.Set) func(i int) []byte {
		return func(i int) []byte { return s.X[i*rows*cols : (i+1)*rows*cols] }
	}

	// Each picture has its own random source, seeded by its index, so workers can draw them in any order.
	draw := func(stream uint64, count int, render func(i int, rng *rand.Rand) image.Image) [][]float32 {
		out := make([][]float32, count)
		workers := runtime.GOMAXPROCS(0)
		if o.Serial {
			workers = 1
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var p imageprep.Preparer
				for i := w; i < count; i += workers {
					if ctx.Err() != nil {
						return
					}
					rng := rand.New(rand.NewPCG(o.Seed, stream<<32|uint64(i)))
					x := make([]float32, rows*cols)
					if err := p.Prepare(x, render(i, rng), spec); err != nil {
						continue // no digit found: never shown to a model
					}
					out[i] = x
				}
			}()
		}
		wg.Wait()
		return out
	}
	pos := draw(1, o.Digits, func(i int, rng *rand.Rand) image.Image {
		return digitUpload(digit(fit)(rng.IntN(fit.Len())), rows, cols, rng)
	})
	neg := draw(2, o.NonDigits, func(i int, rng *rand.Rand) image.Image {
		return negative(gateFamilies[i%len(gateFamilies)], rng, digit(fit), fit.Len(), rows, cols).upload(rng)
	})
	heldN := min(held.Len(), 20000)
	hold := draw(3, heldN, func(i int, rng *rand.Rand) image.Image {
		return digitUpload(digit(held)(i), rows, cols, rng)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	set := &dataset.Set{Name: "gate", Classes: []string{"digit", "not_a_digit"}, Rows: rows, Cols: cols}
	add := func(xs [][]float32, y byte) int {
		n := 0
		for _, x := range xs {
			if x == nil {
				continue
			}
			for _, v := range x {
				set.X = append(set.X, byte(math.Round(float64(min(max(v, 0), 1))*255)))
			}
			set.Y = append(set.Y, y)
			n++
		}
		return n
	}
	digits, nonDigits := add(pos, 0), add(neg, 1)
	req := Request{Dataset: "gate", Hidden: o.Hidden, Activation: "relu", Optimizer: "adam", LearningRate: 0.001,
		BatchSize: 64, Epochs: o.Epochs, Seed: o.Seed, Augment: true, Activate: "never"}
	res, err := Train(ctx, req, set, Options{Name: "gate", Serial: o.Serial})
	if err != nil {
		return nil, err
	}
	m := res.Network.MLP

	// The threshold: the score that the share Reject of the held-out digits exceed. A digit in which preprocessing
	// finds no digit is answered no_digit_found before the gate is asked, so it does not count here.
	var scores []float32
	var ws model.Workspace[float32]
	ws.Serial = o.Serial
	for _, x := range hold {
		if x == nil {
			continue
		}
		scores = append(scores, m.Forward(x, 1, &ws)[model.GateNotDigit])
	}
	if len(scores) == 0 {
		return nil, errors.New("no held-out digit survived preprocessing")
	}
	slices.Sort(scores)
	slices.Reverse(scores)
	k := int(o.Reject * float64(len(scores)))
	th := min(max(float64(scores[k]), 1e-6), 1-1e-6)
	above := 0
	for _, s := range scores {
		if float64(s) > th {
			above++
		}
	}
	g := &model.Gate{Threshold: th, HeldOutRejected: float64(above) / float64(len(scores)), Digits: digits, NonDigits: nonDigits, Seed: o.Seed}
	return &GateFit{Gate: g, MLP: m, HeldOut: len(scores)}, nil
}
