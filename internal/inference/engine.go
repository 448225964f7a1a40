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
	// NotDigit holds each input's gate score, the probability that it is not a digit (model.Gate), nil when the
	// model has no gate.
	NotDigit []float32
}

// request is one caller's inputs travelling through the queue.
type request struct {
	ctx      context.Context
	net      *model.Network // the network it runs on, chosen when it was made
	x        []float32      // n rows of inputs
	n        int
	inputs   int           // values per row the caller prepared for
	enqueued time.Time     // when it joined the queue; zero for a request its caller computes itself, which waits for none
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
	own   request // the request of a caller that computes on its own goroutine, without allocating one
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
	// An idle engine (nothing queued, no batch running) has nothing to batch this request with and nobody to keep
	// waiting: compute here. Once anything runs or waits, requests queue, so load still turns into batches.
	// A request larger than one batch takes several passes; it queues, so that its caller can stop waiting when ctx
	// ends.
	if n <= e.cfg.MaxBatch && e.depth.Load() == 0 && len(e.slots) == cap(e.slots) {
		select {
		case sl := <-e.slots:
			e.mu.RUnlock()
			e.direct.Add(1)
			return e.computeOwn(sl, request{ctx: ctx, net: net, x: x, n: n, inputs: inputs})
		default:
		}
	}
	r := &request{ctx: ctx, net: net, x: x, n: n, inputs: inputs, enqueued: time.Now()}
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
