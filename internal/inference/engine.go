// Package inference runs classifications on a pool of CPU workers. Requests enter a bounded queue; each worker takes
// the first waiting request, drains whatever else is already queued into the same batch (up to a maximum), and runs
// one forward pass for all of it, so load turns into larger matrix products instead of longer queues. A full queue is
// refused at once rather than buffered, a request whose caller gave up is dropped unrun, and the model is swapped
// atomically between batches: a batch never mixes versions and no request fails because of a swap.
package inference

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// Errors returned by Predict.
var (
	// ErrOverloaded means the queue is full; retry later.
	ErrOverloaded = errors.New("inference queue is full")
	// ErrClosed means the engine has been shut down.
	ErrClosed = errors.New("inference engine is closed")
	// ErrInput means the inputs do not fit the active model.
	ErrInput = errors.New("inputs do not fit the model")
)

// Config sizes the engine. Zero values pick the defaults noted on each field.
type Config struct {
	Workers    int           // goroutines running forward passes; 0 means runtime.GOMAXPROCS(0)
	MaxBatch   int           // images per forward pass; 0 means 64
	BatchDelay time.Duration // how long a worker holding a partial batch waits for more while requests keep arriving; 0 never waits
	QueueSize  int           // images waiting at most (also bounds requests); 0 means 16 full batches per worker
	// Observer, when set, is told about every batch (for metrics). It is called from worker goroutines.
	Observer Observer
}

// Observer receives measurements from the engine; implementations must be safe for concurrent use.
type Observer interface {
	// Batch reports one forward pass: how many requests and images it held, and how long it computed.
	Batch(requests, images int, compute time.Duration)
	// Waited reports how long one request spent in the queue.
	Waited(d time.Duration)
	// Dropped reports a request skipped because its caller had gone.
	Dropped()
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 64
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 16 * c.MaxBatch * c.Workers
	}
	return c
}

// Result is the outcome of one Predict call.
type Result struct {
	// Probs holds one row of class probabilities per input, in input order.
	Probs []float32
	// Model is the network that computed them; every row comes from the same one.
	Model *model.Network
}

// request is one caller's inputs travelling through the queue.
type request struct {
	ctx      context.Context
	x        []float32 // n rows of inputs
	n        int
	inputs   int // values per row the caller prepared for
	enqueued time.Time
	done     chan struct{}
	res      Result
	err      error
}

// Engine is the worker pool. Create it with New; it is safe for concurrent use.
type Engine struct {
	cfg    Config
	model  atomic.Pointer[model.Network]
	queue  chan *request
	queued atomic.Int64 // images in the queue
	depth  atomic.Int64 // requests in the queue
	busy   atomic.Int64 // workers computing
	swaps  atomic.Int64
	closed atomic.Bool
	mu     sync.RWMutex // held for reading while enqueueing, for writing while closing: nothing enqueues after Close
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New starts the workers with net as the active model.
func New(cfg Config, net *model.Network) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:   cfg,
		queue: make(chan *request, cfg.QueueSize),
		stop:  make(chan struct{}),
	}
	e.model.Store(net)
	for range cfg.Workers {
		e.wg.Go(e.work)
	}
	return e
}

// Config returns the effective configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Model returns the active network.
func (e *Engine) Model() *model.Network { return e.model.Load() }

// Swap makes net the active model for every batch that starts from now on and returns the previous one. Batches
// already running finish with the model they started with.
func (e *Engine) Swap(net *model.Network) *model.Network {
	e.swaps.Add(1)
	return e.model.Swap(net)
}

// Stats is a snapshot of the engine's gauges.
type Stats struct {
	QueuedRequests, QueuedImages, BusyWorkers, Workers int
	Swaps                                              int64
}

// Stats returns the current queue depth and worker use.
func (e *Engine) Stats() Stats {
	return Stats{
		QueuedRequests: int(e.depth.Load()), QueuedImages: int(e.queued.Load()),
		BusyWorkers: int(e.busy.Load()), Workers: e.cfg.Workers, Swaps: e.swaps.Load(),
	}
}

// Predict classifies n inputs (x holds n rows of `inputs` values each; inputs must match the active model's input
// size) and waits for the result. It returns ErrOverloaded at once when the queue is full, the context's error when
// ctx ends first (the request is then dropped from the queue), and ErrInput when the rows do not fit the model that
// picks the request up (possible only if a swap changes the input size).
func (e *Engine) Predict(ctx context.Context, x []float32, n, inputs int) (Result, error) {
	if n <= 0 || len(x) != n*inputs {
		return Result{}, fmt.Errorf("%w: %d values for %d rows of %d", ErrInput, len(x), n, inputs)
	}
	e.mu.RLock()
	if e.closed.Load() {
		e.mu.RUnlock()
		return Result{}, ErrClosed
	}
	if q := e.queued.Add(int64(n)); q > int64(e.cfg.QueueSize) && q != int64(n) {
		// Over capacity. A request larger than the whole queue is still let into an empty queue, so it cannot be
		// refused forever.
		e.queued.Add(-int64(n))
		e.mu.RUnlock()
		return Result{}, ErrOverloaded
	}
	r := &request{ctx: ctx, x: x, n: n, inputs: inputs, enqueued: time.Now(), done: make(chan struct{})}
	e.depth.Add(1)
	select {
	case e.queue <- r:
	default:
		e.depth.Add(-1)
		e.queued.Add(-int64(n))
		e.mu.RUnlock()
		return Result{}, ErrOverloaded
	}
	e.mu.RUnlock()
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Close stops the workers after the queue has drained. Predict calls after Close return ErrClosed.
func (e *Engine) Close() {
	e.mu.Lock()
	already := e.closed.Swap(true)
	e.mu.Unlock()
	if already {
		return
	}
	close(e.stop)
	e.wg.Wait()
}

func (e *Engine) take(r *request) {
	e.depth.Add(-1)
	e.queued.Add(-int64(r.n))
}

// work is one worker: it owns its scratch space and runs batches until the engine closes.
func (e *Engine) work() {
	var (
		ws    = model.Workspace[float32]{Serial: true}
		x     []float32
		batch []*request
		carry *request // taken from the queue but did not fit the last batch: it starts the next one
	)
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-e.queue:
				e.take(first)
			case <-e.stop:
				// Drain what is left so no caller waits forever.
				for {
					select {
					case r := <-e.queue:
						e.take(r)
						r.err = ErrClosed
						close(r.done)
					default:
						return
					}
				}
			}
		}
		batch = append(batch[:0], first)
		var images int
		batch, images, carry = e.collect(batch, first.n)

		e.busy.Add(1)
		x = e.run(batch, images, &ws, x)
		e.busy.Add(-1)
	}
}

// collect adds queued requests to the batch while they fit and returns the first one that did not (it starts the
// worker's next batch). When BatchDelay is set and it found others waiting (a burst is arriving), it keeps collecting
// until the batch is full or the delay has passed; with an empty queue it never waits.
func (e *Engine) collect(batch []*request, images int) (_ []*request, _ int, carry *request) {
	var deadline <-chan time.Time
	found := false
	for images < e.cfg.MaxBatch {
		var r *request
		select {
		case r = <-e.queue:
		default:
			if !found || e.cfg.BatchDelay <= 0 {
				return batch, images, nil
			}
			if deadline == nil {
				t := time.NewTimer(e.cfg.BatchDelay)
				defer t.Stop()
				deadline = t.C
			}
			select {
			case r = <-e.queue:
			case <-deadline:
				return batch, images, nil
			}
		}
		e.take(r)
		if images+r.n > e.cfg.MaxBatch {
			return batch, images, r
		}
		batch = append(batch, r)
		images += r.n
		found = true
	}
	return batch, images, nil
}

// run computes one batch with the model active when it starts, and answers every request in it.
func (e *Engine) run(batch []*request, images int, ws *model.Workspace[float32], x []float32) []float32 {
	net := e.model.Load()
	in, classes := net.MLP.Inputs(), net.MLP.Classes()
	// Keep only callers still waiting and whose rows fit this model.
	live := batch[:0]
	rows := 0
	for _, r := range batch {
		switch {
		case r.ctx.Err() != nil:
			r.err = r.ctx.Err()
			close(r.done)
			if e.cfg.Observer != nil {
				e.cfg.Observer.Dropped()
			}
		case r.inputs != in:
			r.err = fmt.Errorf("%w: rows of %d values, model %s takes %d", ErrInput, r.inputs, net.Version, in)
			close(r.done)
		default:
			live = append(live, r)
			rows += r.n
		}
	}
	if len(live) == 0 {
		return x
	}
	start := time.Now()
	if e.cfg.Observer != nil {
		for _, r := range live {
			e.cfg.Observer.Waited(start.Sub(r.enqueued))
		}
	}
	// One request alone needs no copy; several are gathered into one matrix.
	var probs []float32
	if len(live) == 1 {
		probs = e.forward(net, live[0].x, rows, ws)
	} else {
		if cap(x) < rows*in {
			x = make([]float32, rows*in)
		}
		x = x[:rows*in]
		off := 0
		for _, r := range live {
			off += copy(x[off:], r.x)
		}
		probs = e.forward(net, x, rows, ws)
	}
	off := 0
	for _, r := range live {
		r.res = Result{Probs: append([]float32(nil), probs[off*classes:(off+r.n)*classes]...), Model: net}
		off += r.n
		close(r.done)
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.Batch(len(live), rows, time.Since(start))
	}
	return x
}

// forward runs rows inputs in slices of at most MaxBatch, returning all probabilities. For one slice it returns the
// workspace's buffer directly.
func (e *Engine) forward(net *model.Network, x []float32, rows int, ws *model.Workspace[float32]) []float32 {
	if rows <= e.cfg.MaxBatch {
		return net.Forward(x, rows, ws)
	}
	in, classes := net.MLP.Inputs(), net.MLP.Classes()
	out := make([]float32, 0, rows*classes)
	for lo := 0; lo < rows; lo += e.cfg.MaxBatch {
		hi := min(lo+e.cfg.MaxBatch, rows)
		out = append(out, net.Forward(x[lo*in:hi*in], hi-lo, ws)...)
	}
	return out
}
