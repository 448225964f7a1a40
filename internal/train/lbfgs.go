package train

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/optimize"
)

// lbfgsChunk is how many examples one forward and backward pass of the full-batch objective takes; cancellation is
// checked between chunks.
const lbfgsChunk = 2048

// lbfgs minimises the full-batch training loss with gonum's L-BFGS. Each major iteration counts as one epoch. The
// objective is evaluated in float32 with our kernels and accumulated in float64 for the optimiser.
func (r *run) lbfgs(ctx context.Context) error {
	params := r.net.MLP.Params
	n, f := r.train.Len(), r.train.Features()
	chunk := min(lbfgsChunk, n)
	x := make([]float32, chunk*f)
	y := make([]uint8, chunk)
	g32 := make([]float32, len(params))
	bp := Backprop[float32]{Serial: r.opts.Serial}

	// objective evaluates loss and gradient at w, caching the last point because gonum asks for Func and Grad of the
	// same point separately.
	var (
		lastW    []float64
		lastLoss float64
		lastGrad = make([]float64, len(params))
		lastAcc  float64
	)
	evaluate := func(w []float64) (float64, error) {
		if lastW != nil && slices.Equal(w, lastW) {
			return lastLoss, nil
		}
		for i, v := range w {
			params[i] = float32(v)
		}
		clear(lastGrad)
		var loss float64
		correct := 0
		for lo := 0; lo < n; lo += chunk {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			hi := min(lo+chunk, n)
			for i := lo; i < hi; i++ {
				r.train.Inputs(x[(i-lo)*f:(i-lo+1)*f], i)
				y[i-lo] = r.train.Y[i]
			}
			l, c := bp.Gradient(r.net.MLP, x, y, hi-lo, 0, g32)
			wgt := float64(hi-lo) / float64(n)
			loss += l * wgt
			correct += c
			for i, g := range g32 {
				lastGrad[i] += float64(g) * wgt
			}
		}
		if l2 := r.req.L2; l2 > 0 {
			off := 0 // offset of the layer's weights in the flat vector
			for _, l := range r.net.MLP.Layers {
				for i := range l.W {
					wi := w[off+i]
					loss += l2 / 2 * wi * wi
					lastGrad[off+i] += l2 * wi
				}
				off += len(l.W) + len(l.B)
			}
		}
		lastW = append(lastW[:0], w...)
		lastLoss, lastAcc = loss, float64(correct)/float64(n)
		return loss, nil
	}

	var runErr error
	problem := optimize.Problem{
		Func: func(w []float64) float64 {
			l, err := evaluate(w)
			if err != nil {
				runErr = err
				return math.NaN()
			}
			return l
		},
		Grad: func(grad, w []float64) {
			if _, err := evaluate(w); err != nil {
				runErr = err
			}
			copy(grad, lastGrad)
		},
	}
	w0 := make([]float64, len(params))
	for i, p := range params {
		w0[i] = float64(p)
	}
	epochStart := time.Now()
	rec := recorderFunc(func(loc *optimize.Location, op optimize.Operation) error {
		if runErr != nil {
			return runErr
		}
		if op&optimize.MajorIteration == 0 {
			return nil
		}
		for i, v := range loc.X {
			params[i] = float32(v)
		}
		epoch := len(r.history) + 1
		secs := time.Since(epochStart).Seconds()
		if r.opts.OnProgress != nil {
			r.progress(epoch, 1, loc.F, lastAcc)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		stop := r.endEpoch(Epoch{Epoch: epoch, Loss: loc.F, TrainAccuracy: lastAcc, Seconds: secs})
		epochStart = time.Now()
		if stop || epoch >= r.req.Epochs {
			return errStop
		}
		return nil
	})
	settings := &optimize.Settings{
		MajorIterations:   r.req.Epochs,
		GradientThreshold: 1e-6,
		Recorder:          rec,
		Concurrent:        1,
	}
	res, err := optimize.Minimize(problem, w0, settings, &optimize.LBFGS{Store: 20})
	if runErr != nil {
		return runErr
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if len(r.history) > 0 {
		return nil // the recorder kept the parameters of the last major iteration, and the best ones
	}
	if err != nil && err != errStop || res == nil {
		return fmt.Errorf("lbfgs: %v", err)
	}
	// Converged before the first major iteration was recorded; report the point it stopped at.
	l, _ := evaluate(res.X)
	if r.opts.OnProgress != nil {
		// The run is over after one epoch of the requested ones: all of it is done.
		r.opts.OnProgress(Progress{Epoch: 1, Epochs: r.req.Epochs, Fraction: 1, Loss: l, TrainAccuracy: lastAcc})
	}
	r.endEpoch(Epoch{Epoch: 1, Loss: l, TrainAccuracy: lastAcc, Seconds: time.Since(epochStart).Seconds()})
	return nil
}

// recorderFunc adapts a function to optimize.Recorder.
type recorderFunc func(loc *optimize.Location, op optimize.Operation) error

func (recorderFunc) Init() error { return nil }
func (f recorderFunc) Record(loc *optimize.Location, op optimize.Operation, _ *optimize.Stats) error {
	return f(loc, op)
}
