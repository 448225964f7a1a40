package inference

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

func testNet(t testing.TB, seed uint64, version string) *model.Network {
	t.Helper()
	labels := []string{"a", "b", "c", "d"}
	n, err := model.New(model.Info{
		Name: "t", Version: version, Layers: []int{16, 8, 4}, Activation: model.ReLU, Labels: labels,
		Input: model.Input{Width: 4, Height: 4, Preprocess: model.PreprocessMNIST},
	}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func inputs(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	x := make([]float32, n*16)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func direct(net *model.Network, x []float32, n int) []float32 {
	var ws model.Workspace[float32]
	return append([]float32(nil), net.Forward(x, n, &ws)...)
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-6 || d < -1e-6 {
			return false
		}
	}
	return true
}

func TestPredictMatchesADirectForwardPassUnderConcurrency(t *testing.T) {
	net := testNet(t, 1, "v1")
	e := New(Config{Workers: 2, MaxBatch: 8}, net)
	defer e.Close()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			n := 1 + g%5
			x := inputs(n, uint64(g))
			want := direct(net, x, n)
			for range 20 {
				res, err := e.Predict(context.Background(), x, n, 16)
				if err != nil {
					t.Error(err)
					return
				}
				if !equal(res.Probs, want) {
					t.Errorf("goroutine %d: got %v; want %v", g, res.Probs, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// gate is an Observer that holds the worker inside its first batch until released, so tests can fill the queue.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	batches          []int // requests per batch
	dropped          atomic.Int64
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) Batch(requests, images int, _ time.Duration) {
	g.mu.Lock()
	g.batches = append(g.batches, requests)
	g.mu.Unlock()
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
}
func (g *gate) Waited(time.Duration) {}
func (g *gate) Dropped()             { g.dropped.Add(1) }

func TestRequestsThatArriveTogetherShareOneBatch(t *testing.T) {
	g := newGate()
	e := New(Config{Workers: 1, MaxBatch: 16, Observer: g}, testNet(t, 1, "v1"))
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := e.Predict(context.Background(), inputs(1, uint64(i)), 1, 16); err != nil {
				t.Error(err)
			}
		})
	}
	testwait.For(t, "10 queued requests", func() bool { return e.Stats().QueuedRequests == 10 })
	close(g.release)
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 2 || g.batches[1] != 10 {
		t.Errorf("batches of %v requests; want [1 10]", g.batches)
	}
}

func TestFullQueueIsRefusedAtOnce(t *testing.T) {
	g := newGate()
	e := New(Config{Workers: 1, MaxBatch: 4, QueueSize: 4, Observer: g}, testNet(t, 1, "v1"))
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	for range 2 {
		go e.Predict(context.Background(), inputs(2, 0), 2, 16)
	}
	testwait.For(t, "a full queue", func() bool { return e.Stats().QueuedImages == 4 })
	// The gate holds the only worker until release, so a Predict that waited for room would never return before
	// it: getting ErrOverloaded here shows the refusal came at once, without timing it.
	_, err := e.Predict(context.Background(), inputs(1, 0), 1, 16)
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("error %v; want ErrOverloaded", err)
	}
	close(g.release)
}

func TestAbandonedRequestsAreDroppedUnrun(t *testing.T) {
	g := newGate()
	e := New(Config{Workers: 1, Observer: g}, testNet(t, 1, "v1"))
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := e.Predict(ctx, inputs(1, 0), 1, 16)
		errc <- err
	}()
	testwait.For(t, "a queued request", func() bool { return e.Stats().QueuedRequests == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("error %v; want context.Canceled", err)
	}
	close(g.release)
	testwait.For(t, "the drop", func() bool { return g.dropped.Load() == 1 })
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 1 {
		t.Errorf("ran %d batches; want only the first (the abandoned request must not run)", len(g.batches))
	}
}

func TestSwapUnderLoadLosesNothingAndNeverMixesVersions(t *testing.T) {
	a, b := testNet(t, 1, "a"), testNet(t, 2, "b")
	e := New(Config{Workers: 2, MaxBatch: 8}, a)
	defer e.Close()
	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				e.Swap(b)
			} else {
				e.Swap(a)
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	// Each caller predicts until both versions have answered someone (and it has made 100 requests), however
	// rarely the swapper gets a turn on a loaded machine; the test's deadline bounds the wait.
	deadline := testwait.Deadline(t)
	var wg sync.WaitGroup
	var seen [2]atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			x := inputs(3, uint64(g))
			wantA, wantB := direct(a, x, 3), direct(b, x, 3)
			for i := 0; i < 100 || (seen[0].Load() == 0 || seen[1].Load() == 0) && time.Now().Before(deadline); i++ {
				res, err := e.Predict(context.Background(), x, 3, 16)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case res.Model == a && equal(res.Probs, wantA):
					seen[0].Add(1)
				case res.Model == b && equal(res.Probs, wantB):
					seen[1].Add(1)
				default:
					t.Errorf("result from model %s matches neither model's own output", res.Model.Version)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	swapper.Wait()
	if seen[0].Load() == 0 || seen[1].Load() == 0 {
		t.Errorf("answers by a: %d, by b: %d; want both versions to have served", seen[0].Load(), seen[1].Load())
	}
}

func TestCloseAnswersEveryWaitingRequest(t *testing.T) {
	g := newGate()
	e := New(Config{Workers: 1, Observer: g}, testNet(t, 1, "v1"))
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	errc := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := e.Predict(context.Background(), inputs(1, 0), 1, 16)
			errc <- err
		}()
	}
	testwait.For(t, "5 queued requests", func() bool { return e.Stats().QueuedRequests == 5 })
	go func() {
		time.Sleep(10 * time.Millisecond)
		close(g.release)
	}()
	e.Close()
	for range 5 {
		if err := <-errc; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("error %v; want a result or ErrClosed", err)
		}
	}
	if _, err := e.Predict(context.Background(), inputs(1, 0), 1, 16); !errors.Is(err, ErrClosed) {
		t.Errorf("Predict after Close: %v; want ErrClosed", err)
	}
}

func TestInputsOfTheWrongSizeAreRefused(t *testing.T) {
	e := New(Config{Workers: 1}, testNet(t, 1, "v1"))
	defer e.Close()
	if _, err := e.Predict(context.Background(), make([]float32, 20), 1, 20); !errors.Is(err, ErrInput) {
		t.Errorf("20 inputs for a 16-input model: %v; want ErrInput", err)
	}
	if _, err := e.Predict(context.Background(), make([]float32, 15), 1, 16); !errors.Is(err, ErrInput) {
		t.Errorf("15 values for one row of 16: %v; want ErrInput", err)
	}
}

func TestLargeRequestsAreSplitIntoMaxBatchPasses(t *testing.T) {
	net := testNet(t, 3, "v1")
	e := New(Config{Workers: 1, MaxBatch: 4, QueueSize: 8}, net)
	defer e.Close()
	x := inputs(11, 5)
	res, err := e.Predict(context.Background(), x, 11, 16)
	if err != nil {
		t.Fatal(err)
	}
	if want := direct(net, x, 11); !equal(res.Probs, want) {
		t.Errorf("11 rows through MaxBatch 4: got %v; want %v", res.Probs, want)
	}
}

// concurrency is an Observer that measures how many batches run at once.
type concurrency struct {
	active, most atomic.Int64
}

func (c *concurrency) Batch(int, int, time.Duration) {
	n := c.active.Add(1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	time.Sleep(100 * time.Microsecond) // widen the window in which an extra batch would overlap
	c.active.Add(-1)
}
func (c *concurrency) Waited(time.Duration) {}
func (c *concurrency) Dropped()             {}

// TestAtMostWorkersBatchesRunAtOnce checks the bound that callers computing on their own goroutines and workers
// share: one batch per slot, never more, however the requests arrive.
func TestAtMostWorkersBatchesRunAtOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 3} {
		c := &concurrency{}
		e := New(Config{Workers: workers, MaxBatch: 4, Observer: c}, testNet(t, 1, "v1"))
		var wg sync.WaitGroup
		for g := range 24 {
			wg.Go(func() {
				for i := range 30 {
					n := 1 + (g+i)%3
					if _, err := e.Predict(context.Background(), inputs(n, uint64(g)), n, 16); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// Every request is answered, so nothing may still count as queued (a request carried over from a full batch
		// must be counted out exactly once).
		if st := e.Stats(); st.QueuedRequests != 0 || st.QueuedImages != 0 {
			t.Errorf("%d workers: after the load, %d requests and %d images still count as queued", workers, st.QueuedRequests, st.QueuedImages)
		}
		e.Close()
		if most := c.most.Load(); most > int64(workers) || most < 1 {
			t.Errorf("%d workers: %d batches ran at once", workers, most)
		}
	}
}

// TestAnIdleEngineComputesOnTheCallersGoroutine checks the fast path and its limit: a request that finds the engine
// idle runs directly, but while a batch runs, requests queue (and so can be batched) instead.
func TestAnIdleEngineComputesOnTheCallersGoroutine(t *testing.T) {
	net := testNet(t, 1, "v1")
	g := newGate()
	e := New(Config{Workers: 2, MaxBatch: 16, Observer: g}, net)
	defer e.Close()
	x := inputs(1, 0)
	go e.Predict(context.Background(), x, 1, 16)
	<-g.entered // the first request holds a slot inside its batch
	if d := e.Stats().Direct; d != 1 {
		t.Fatalf("the first request on an idle engine: Direct = %d; want 1", d)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			res, err := e.Predict(context.Background(), x, 1, 16)
			if err != nil || !equal(res.Probs, direct(net, x, 1)) {
				t.Errorf("queued request: %v, %v", res.Probs, err)
			}
		})
	}
	wg.Wait() // the second slot serves them while the first is held
	if d := e.Stats().Direct; d != 1 {
		t.Errorf("requests arriving while a batch runs: Direct = %d; want them queued (1)", d)
	}
	close(g.release)
	testwait.For(t, "an idle engine", func() bool { return len(e.slots) == cap(e.slots) })
	if _, err := e.Predict(context.Background(), x, 1, 16); err != nil {
		t.Fatal(err)
	}
	if d := e.Stats().Direct; d != 2 {
		t.Errorf("a request on the idle engine again: Direct = %d; want 2", d)
	}
}

// sleeper is an Observer whose first Batch call sleeps, making that pass long.
type sleeper struct {
	d    time.Duration
	once sync.Once
}

func (s *sleeper) Batch(int, int, time.Duration) { s.once.Do(func() { time.Sleep(s.d) }) }
func (*sleeper) Waited(time.Duration)            {}
func (*sleeper) Dropped()                        {}

// TestADeadlineDuringADirectPassIsReported: a caller computing its own request still gets its context's error when
// the deadline passes during the pass, as a queued caller would; a request larger than one batch queues.
func TestADeadlineDuringADirectPassIsReported(t *testing.T) {
	e := New(Config{Workers: 1, MaxBatch: 4, Observer: &sleeper{d: 50 * time.Millisecond}}, testNet(t, 1, "v1"))
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := e.Predict(ctx, inputs(1, 0), 1, 16); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline passed during a direct pass: error %v; want DeadlineExceeded", err)
	}
	if d := e.Stats().Direct; d != 1 {
		t.Fatalf("Direct = %d; want 1", d)
	}
	if _, err := e.Predict(context.Background(), inputs(9, 0), 9, 16); err != nil {
		t.Fatal(err)
	}
	if d := e.Stats().Direct; d != 1 {
		t.Errorf("a request of 9 rows with MaxBatch 4 ran directly (Direct = %d); want it queued", d)
	}
}

// panicker is an Observer whose first Batch call panics.
type panicker struct{ once atomic.Bool }

func (p *panicker) Batch(int, int, time.Duration) {
	if p.once.CompareAndSwap(false, true) {
		panic("observer")
	}
}
func (*panicker) Waited(time.Duration) {}
func (*panicker) Dropped()             {}

// TestAPanicInADirectPassGivesTheSlotBack: net/http recovers a handler's panic, so a pass that panics on a caller's
// goroutine must not keep its slot, or every later request would wait for it.
func TestAPanicInADirectPassGivesTheSlotBack(t *testing.T) {
	e := New(Config{Workers: 1, Observer: &panicker{}}, testNet(t, 1, "v1"))
	defer e.Close()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the observer's panic did not reach the caller")
			}
		}()
		e.Predict(context.Background(), inputs(1, 0), 1, 16)
	}()
	ctx, cancel := context.WithDeadline(context.Background(), testwait.Deadline(t))
	defer cancel()
	if _, err := e.Predict(ctx, inputs(1, 0), 1, 16); err != nil {
		t.Errorf("after a recovered panic: %v (stats %+v)", err, e.Stats())
	}
}

// TestCloseWaitsForDirectPasses: Close returns only once the passes callers compute themselves have finished.
func TestCloseWaitsForDirectPasses(t *testing.T) {
	g := newGate()
	e := New(Config{Workers: 2, Observer: g}, testNet(t, 1, "v1"))
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a direct pass was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	select {
	case <-closed:
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("Close did not return after the pass finished")
	}
}

// TestRandomLoadWithCloseAnswersEveryCall mixes worker counts, batch and queue sizes, batch delays, slow passes,
// cancelled and short-deadline contexts and a Close in the middle: every call returns a right result or an expected
// error, and afterwards nothing counts as queued or busy and every slot is back.
func TestRandomLoadWithCloseAnswersEveryCall(t *testing.T) {
	net := testNet(t, 1, "v1")
	rounds := 100
	if testing.Short() {
		rounds = 25
	}
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 3))
		cfg := Config{Workers: 1 + rng.IntN(3), MaxBatch: 1 + rng.IntN(6), QueueSize: 1 + rng.IntN(20)}
		if rng.IntN(2) == 0 {
			cfg.BatchDelay = time.Duration(rng.IntN(200)) * time.Microsecond
		}
		if rng.IntN(3) == 0 {
			cfg.Observer = &sleeper{d: time.Duration(rng.IntN(500)) * time.Microsecond}
		}
		e := New(cfg, net)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for range 40 {
					n := 1 + r.IntN(8)
					x := inputs(n, uint64(g))
					ctx, cancel := context.WithCancel(context.Background())
					switch r.IntN(4) {
					case 0:
						ctx, cancel = context.WithTimeout(context.Background(), time.Duration(r.IntN(100))*time.Microsecond)
					case 1:
						cancel()
					}
					res, err := e.Predict(ctx, x, n, 16)
					cancel()
					switch {
					case err == nil:
						if !equal(res.Probs, direct(net, x, n)) {
							t.Errorf("round %d: wrong result", round)
						}
					case errors.Is(err, ErrClosed), errors.Is(err, ErrOverloaded), errors.Is(err, context.Canceled),
						errors.Is(err, context.DeadlineExceeded):
					default:
						t.Errorf("round %d: %v", round, err)
					}
				}
			})
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		e.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testwait.Timeout(t)):
			t.Fatalf("round %d: callers still waiting until the test's deadline after Close", round)
		}
		if st := e.Stats(); st.QueuedRequests != 0 || st.QueuedImages != 0 || st.BusyWorkers != 0 {
			t.Fatalf("round %d: after Close, %+v", round, st)
		}
	}
}

// TestGateScoresFollowEveryRow checks that a model's gate scores come back with its probabilities, one per row and
// in order, for requests batched together and for one split into MaxBatch passes.
func TestGateScoresFollowEveryRow(t *testing.T) {
	net := testNet(t, 4, "v1")
	g := model.NewMLP[float32]([]int{16, 5, 2}, model.ReLU)
	g.Init(rand.New(rand.NewPCG(7, 7)))
	net.SetGate(&model.Gate{Threshold: 0.5}, g)
	want := func(x []float32, n int) []float32 {
		var ws model.Workspace[float32]
		return net.NotDigitScores(nil, x, n, &ws)
	}
	e := New(Config{Workers: 1, MaxBatch: 4, QueueSize: 64}, net)
	defer e.Close()
	var wg sync.WaitGroup
	for k, n := range []int{11, 1, 3, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := inputs(n, uint64(20+k))
			res, err := e.Predict(context.Background(), x, n, 16)
			if err != nil {
				t.Error(err)
				return
			}
			if w := want(x, n); len(res.NotDigit) != n || !equal(res.NotDigit, w) {
				t.Errorf("%d rows: gate scores %v; want %v", n, res.NotDigit, w)
			}
			if !equal(res.Probs, direct(net, x, n)) {
				t.Errorf("%d rows: the probabilities changed beside the gate", n)
			}
		}()
	}
	wg.Wait()
}
