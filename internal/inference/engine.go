// Package inference runs classifications on a pool of CPU workers. The pool has one slot per worker, and whoever
// computes a forward pass holds a slot, so at most Workers passes run at once. Requests enter a bounded queue; a
// worker takes the first waiting request, waits for a free slot, drains whatever else is queued by then into the same
// batch (up to a maximum), and runs one forward pass for all of it, so load turns into larger matrix products instead
// of longer queues. A request that finds the engine idle (nothing queued, no pass running) has nothing to be batched
// with, so its caller takes a slot and computes on its own goroutine: that saves the two goroutine switches, and
// often the cross-CPU wake-up, of handing the request to a worker and the answer back. A full queue is refused at
// once rather than buffered, a request whose caller gave up is dropped unrun, and the model is swapped atomically
// between batches: a batch never mixes versions and no request fails because of a swap.
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

// DefaultMaxBatch is the images per forward pass when Config.MaxBatch is zero; the server's MAX_BATCH defaults to it.
const DefaultMaxBatch = 64

// Config sizes the engine. Zero values pick the defaults noted on each field.
type Config struct {
	Workers    int           // goroutines running forward passes; 0 means runtime.GOMAXPROCS(0)
	MaxBatch   int           // images per forward pass; 0 means DefaultMaxBatch (64)
	BatchDelay time.Duration // how long a worker holding a partial batch waits for more while requests keep arriving; 0 never waits
	QueueSize  int           // images waiting at most (also bounds requests); 0 means 16 full batches per worker
	// Observer, when set, is told about every batch (for metrics). It is called by whoever computes the batch (a
	// worker, or a caller computing its own request on an idle engine), while that holds a slot.
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
		c.MaxBatch = DefaultMaxBatch
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
	// Distances holds each input's feature distance (model.FeatureDistance), nil when the model has none.
	Distances []float32
}

// request is one caller's inputs travelling through the queue.
type request struct {
	ctx      context.Context
	x        []float32 // n rows of inputs
	n        int
	inputs   int // values per row the caller prepared for
	enqueued time.Time
	done     chan struct{} // closed when res or err is set; nil for a request its caller computes itself
	res      Result
	err      error
}

// finish tells a waiting caller that res or err is set.
func (r *request) finish() {
	if r.done != nil {
		close(r.done)
	}
}

// Engine is the worker pool. Create it with New; it is safe for concurrent use.
type Engine struct {
	cfg    Config
	model  atomic.Pointer[model.Network]
	queue  chan *request
	slots  chan *slot   // one per worker; computing a batch takes one
	queued atomic.Int64 // images in the queue
	depth  atomic.Int64 // requests in the queue (including one a worker holds while it waits for a slot)
	busy   atomic.Int64 // slots computing
	direct atomic.Int64 // requests computed by their callers
	swaps  atomic.Int64
	closed atomic.Bool
	mu     sync.RWMutex // held for reading while enqueueing, for writing while closing: nothing enqueues after Close
	stop   chan struct{}
	wg     sync.WaitGroup
}

// slot is the right to run one forward pass, with the scratch space that pass needs; whoever holds it owns it.
type slot struct {
	ws    model.Workspace[float32]
	x     []float32
	batch []*request
}

// New starts the workers with net as the active model.
func New(cfg Config, net *model.Network) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:   cfg,
		queue: make(chan *request, cfg.QueueSize),
		slots: make(chan *slot, cfg.Workers),
		stop:  make(chan struct{}),
	}
	e.model.Store(net)
	for range cfg.Workers {
		e.slots <- &slot{ws: model.Workspace[float32]{Serial: true}}
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
	Direct                                             int64 // requests that found the engine idle and ran on their caller's goroutine
}

// Stats returns the current queue depth and worker use.
func (e *Engine) Stats() Stats {
	return Stats{
		QueuedRequests: int(e.depth.Load()), QueuedImages: int(e.queued.Load()),
		BusyWorkers: int(e.busy.Load()), Workers: e.cfg.Workers, Swaps: e.swaps.Load(), Direct: e.direct.Load(),
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
	r := &request{ctx: ctx, x: x, n: n, inputs: inputs, enqueued: time.Now()}
	// An idle engine (nothing queued, no batch running) has nothing to batch this request with and nobody to keep
	// waiting: compute here. Once anything runs or waits, requests queue, so load still turns into batches.
	// A request larger than one batch takes several passes; it queues, so that its caller can stop waiting when ctx
	// ends.
	if n <= e.cfg.MaxBatch && e.depth.Load() == 0 && len(e.slots) == cap(e.slots) {
		select {
		case sl := <-e.slots:
			e.mu.RUnlock()
			e.direct.Add(1)
			sl.batch = append(sl.batch[:0], r)
			e.compute(sl, n)
			if err := ctx.Err(); err != nil && r.err == nil {
				// It ended during the pass: answer as a queued request's caller would have been answered.
				return Result{}, err
			}
			return r.res, r.err
		default:
		}
	}
	if q := e.queued.Add(int64(n)); q > int64(e.cfg.QueueSize) && q != int64(n) {
		// Over capacity. A request larger than the whole queue is still let into an empty queue, so it cannot be
		// refused forever.
		e.queued.Add(-int64(n))
		e.mu.RUnlock()
		return Result{}, ErrOverloaded
	}
	r.done = make(chan struct{})
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

// Close stops the workers after the queue has drained and waits for every pass in progress. Predict calls after Close
// return ErrClosed.
func (e *Engine) Close() {
	e.mu.Lock()
	already := e.closed.Swap(true)
	e.mu.Unlock()
	if already {
		return
	}
	close(e.stop)
	e.wg.Wait()
	// Wait for passes callers are computing themselves: no new one can start once closed is set, and each gives its
	// slot back.
	for range cap(e.slots) {
		<-e.slots
	}
}

func (e *Engine) take(r *request) {
	e.depth.Add(-1)
	e.queued.Add(-int64(r.n))
}

// work is one worker: it takes the first waiting request, waits for a slot, and runs batches until the engine closes.
// The request it holds while waiting still counts as queued, so callers keep queueing behind it rather than taking
// the slot it waits for.
func (e *Engine) work() {
	var carry *request // received from the queue but did not fit the last batch (still counted as queued): it starts the next one
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-e.queue:
			case <-e.stop:
				e.drain()
				return
			}
		}
		var sl *slot
		select {
		case sl = <-e.slots:
		case <-e.stop:
			e.take(first)
			first.err = ErrClosed
			close(first.done)
			e.drain()
			return
		}
		e.take(first)
		sl.batch = append(sl.batch[:0], first)
		var images int
		sl.batch, images, carry = e.collect(sl.batch, first.n)
		e.compute(sl, images)
	}
}

// drain answers ErrClosed to everything left in the queue, so no caller waits forever.
func (e *Engine) drain() {
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

// compute runs the slot's batch of images and gives the slot back, even if the pass panics (on a caller's goroutine
// net/http would recover the panic, and a lost slot would stall every later request).
func (e *Engine) compute(sl *slot, images int) {
	e.busy.Add(1)
	defer func() {
		e.busy.Add(-1)
		clear(sl.batch) // let the requests go
		e.slots <- sl
	}()
	sl.x = e.run(sl.batch, images, &sl.ws, sl.x)
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
		if images+r.n > e.cfg.MaxBatch {
			return batch, images, r // still counted as queued until its own batch starts
		}
		e.take(r)
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
			r.finish()
			if e.cfg.Observer != nil {
				e.cfg.Observer.Dropped()
			}
		case r.inputs != in:
			r.err = fmt.Errorf("%w: rows of %d values, model %s takes %d", ErrInput, r.inputs, net.Version, in)
			r.finish()
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
	var probs, dists []float32
	if len(live) == 1 {
		probs, dists = e.forward(net, live[0].x, rows, ws)
	} else {
		if cap(x) < rows*in {
			x = make([]float32, rows*in)
		}
		x = x[:rows*in]
		off := 0
		for _, r := range live {
			off += copy(x[off:], r.x)
		}
		probs, dists = e.forward(net, x, rows, ws)
	}
	off := 0
	for _, r := range live {
		r.res = Result{Probs: append([]float32(nil), probs[off*classes:(off+r.n)*classes]...), Model: net}
		if dists != nil {
			r.res.Distances = dists[off : off+r.n : off+r.n]
		}
		off += r.n
		r.finish()
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.Batch(len(live), rows, time.Since(start))
	}
	return x
}

// forward runs rows inputs in slices of at most MaxBatch, returning all probabilities and, when the model has a
// feature distance, each row's (in a fresh slice, nil otherwise). For one slice it returns the workspace's buffer of
// probabilities directly.
func (e *Engine) forward(net *model.Network, x []float32, rows int, ws *model.Workspace[float32]) (probs, dists []float32) {
	if rows <= e.cfg.MaxBatch {
		probs = net.Forward(x, rows, ws)
		return probs, net.Distances(nil, rows, ws)
	}
	in, classes := net.MLP.Inputs(), net.MLP.Classes()
	out := make([]float32, 0, rows*classes)
	for lo := 0; lo < rows; lo += e.cfg.MaxBatch {
		hi := min(lo+e.cfg.MaxBatch, rows)
		out = append(out, net.Forward(x[lo*in:hi*in], hi-lo, ws)...)
		dists = net.Distances(dists, hi-lo, ws)
	}
	return out, dists
}
