// Package inference runs classifications on a pool of CPU workers. The pool has one slot per worker, and whoever
// computes a forward pass holds a slot, so at most Workers passes run at once. Requests enter a bounded queue, one
// queue limit for the whole process, kept as one lane per model version: a request names the network it runs on
// (PredictOn) or takes the engine's default one (Predict). A worker with a free slot takes the lane whose turn it is,
// drains whatever that lane holds by then into one batch (up to a maximum), and runs one forward pass for all of it,
// so load turns into larger matrix products instead of longer queues, and a batch never mixes models or versions.
//
// Fairness: lanes with queued work take turns, one batch each (round robin), so however many requests one model
// has queued, another model's request waits for at most one batch of every other lane before its own. A request that finds the engine idle (nothing queued, no pass running) has nothing to be batched
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

// ModelObserver is an Observer that is also told which network each forward pass ran (for metrics by model).
type ModelObserver interface {
	BatchOf(net *model.Network, requests, images int)
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
	net      *model.Network // the network it runs on, chosen when it was made
	x        []float32      // n rows of inputs
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
	qmu    sync.Mutex
	lanes  map[*model.Network]*lane // requests waiting, by the network they run on
	ring   []*lane                  // lanes with waiting requests, in turn order
	turn   int                      // index in ring of the lane whose turn is next
	kick   chan struct{}            // capacity 1: a request is waiting (a worker that takes one passes the kick on)
	slots  chan *slot               // one per worker; computing a batch takes one
	queued atomic.Int64             // images in the queue
	depth  atomic.Int64             // requests in the queue (including one a worker holds while it waits for a slot)
	busy   atomic.Int64             // slots computing
	direct atomic.Int64             // requests computed by their callers
	swaps  atomic.Int64
	closed atomic.Bool
	mu     sync.RWMutex // held for reading while enqueueing, for writing while closing: nothing enqueues after Close
	stop   chan struct{}
	wg     sync.WaitGroup
}

// lane holds the requests waiting for one network, oldest first.
type lane struct {
	net  *model.Network
	reqs []*request
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
		lanes: map[*model.Network]*lane{},
		kick:  make(chan struct{}, 1),
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

// Predict classifies n inputs with the active model (x holds n rows of `inputs` values each; inputs must match
// the model's input size) and waits for the result. It returns ErrOverloaded at once when the queue is full, the
// context's error when ctx ends first (the request is then dropped from the queue), and ErrInput when the rows do not
// fit the model.
func (e *Engine) Predict(ctx context.Context, x []float32, n, inputs int) (Result, error) {
	return e.PredictOn(ctx, e.model.Load(), x, n, inputs)
}

// PredictOn is Predict with the network named by the caller (any model or version it holds), sharing the engine's
// workers and queue limit with every other network; its requests are batched only with requests for net.
func (e *Engine) PredictOn(ctx context.Context, net *model.Network, x []float32, n, inputs int) (Result, error) {
	if n <= 0 || len(x) != n*inputs {
		return Result{}, fmt.Errorf("%w: %d values for %d rows of %d", ErrInput, len(x), n, inputs)
	}
	if in := net.MLP.Inputs(); inputs != in {
		return Result{}, fmt.Errorf("%w: rows of %d values, model %s takes %d", ErrInput, inputs, net.Version, in)
	}
	e.mu.RLock()
	if e.closed.Load() {
		e.mu.RUnlock()
		return Result{}, ErrClosed
	}
	r := &request{ctx: ctx, net: net, x: x, n: n, inputs: inputs, enqueued: time.Now()}
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
	e.enqueue(r)
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

// enqueue appends r to its network's lane and wakes a worker.
func (e *Engine) enqueue(r *request) {
	e.qmu.Lock()
	l := e.lanes[r.net]
	if l == nil {
		l = &lane{net: r.net}
		e.lanes[r.net] = l
	}
	if len(l.reqs) == 0 {
		e.ring = append(e.ring, l)
	}
	l.reqs = append(l.reqs, r)
	e.qmu.Unlock()
	e.wake()
}

// wake passes a kick to one idle worker, unless one is already pending.
func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// work is one worker: woken by a kick, it takes a slot, then a batch from the lane whose turn it is, and runs it,
// until the engine closes.
func (e *Engine) work() {
	for {
		select {
		case <-e.kick:
		case <-e.stop:
			e.drain()
			return
		}
		var sl *slot
		select {
		case sl = <-e.slots:
		case <-e.stop:
			e.drain()
			return
		}
		batch, images := e.collect(sl.batch[:0])
		if len(batch) == 0 {
			e.slots <- sl
			continue
		}
		sl.batch = batch
		e.compute(sl, images)
	}
}

// next takes the oldest requests of the lane whose turn it is, as many as fit one batch (at least one), and moves
// the turn on. It passes the kick on when requests remain, so another idle worker takes them. Callers hold qmu.
func (e *Engine) next(batch []*request, images int, from *lane) ([]*request, int, *lane) {
	if len(e.ring) == 0 {
		return batch, images, nil
	}
	at := e.turn % len(e.ring)
	l := e.ring[at]
	if from != nil {
		// Topping up a batch: only its own lane.
		if from.net != l.net {
			at = -1
			for k, c := range e.ring {
				if c == from {
					at = k
				}
			}
			if at < 0 {
				e.wake() // the kick that brought the caller here belongs to another lane
				return batch, images, from
			}
			l = from
		}
	}
	took := 0
	for _, r := range l.reqs {
		if len(batch) > 0 && images+r.n > e.cfg.MaxBatch {
			break
		}
		e.take(r)
		batch = append(batch, r)
		images += r.n
		took++
	}
	clear(l.reqs[:took])
	l.reqs = l.reqs[took:]
	if len(l.reqs) == 0 {
		e.ring = append(e.ring[:at], e.ring[at+1:]...)
		delete(e.lanes, l.net)
		// The lanes after it have moved up one place.
		if from == nil {
			e.turn = at
		} else if at < e.turn {
			e.turn--
		}
	} else if from == nil {
		e.turn = at + 1
	}
	if len(e.ring) > 0 {
		e.wake()
	}
	return batch, images, l
}

// collect forms a batch from the lane whose turn it is. When BatchDelay is set and the batch found company (a burst
// is arriving), it keeps topping the batch up from the same lane until it is full or the delay has passed.
func (e *Engine) collect(batch []*request) ([]*request, int) {
	e.qmu.Lock()
	batch, images, l := e.next(batch, 0, nil)
	e.qmu.Unlock()
	if l == nil || len(batch) < 2 || e.cfg.BatchDelay <= 0 || images >= e.cfg.MaxBatch {
		return batch, images
	}
	t := time.NewTimer(e.cfg.BatchDelay)
	defer t.Stop()
	for images < e.cfg.MaxBatch {
		select {
		case <-e.kick:
		case <-t.C:
			return batch, images
		case <-e.stop:
			return batch, images
		}
		e.qmu.Lock()
		batch, images, _ = e.next(batch, images, l)
		e.qmu.Unlock()
	}
	return batch, images
}

// drain answers ErrClosed to everything left in the queue, so no caller waits forever.
func (e *Engine) drain() {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	for _, l := range e.ring {
		for _, r := range l.reqs {
			e.take(r)
			r.err = ErrClosed
			close(r.done)
		}
		l.reqs = nil
	}
	e.ring = nil
	clear(e.lanes)
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

// run computes one batch, whose requests all run on one network, and answers every request in it.
func (e *Engine) run(batch []*request, images int, ws *model.Workspace[float32], x []float32) []float32 {
	net := batch[0].net
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
		if mo, ok := e.cfg.Observer.(ModelObserver); ok {
			mo.BatchOf(net, len(live), rows)
		}
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
