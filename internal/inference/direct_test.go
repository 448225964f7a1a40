package inference

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// waits is an Observer that records the queue waits it is told of.
type waits struct {
	mu   sync.Mutex
	seen []time.Duration
	n    atomic.Int64
}

func (w *waits) Batch(int, int, time.Duration) {}
func (w *waits) Dropped()                      {}
func (w *waits) Waited(d time.Duration) {
	w.n.Add(1)
	w.mu.Lock()
	if len(w.seen) < cap(w.seen) {
		w.seen = append(w.seen, d)
	}
	w.mu.Unlock()
}

// A request that a caller computes on an idle engine never queued: its wait is reported as none, and the pass
// allocates nothing but the answer, one slice shared by its probabilities and scores.
func TestADirectRequestWaitsNothingAndAllocatesOnlyItsAnswer(t *testing.T) {
	w := &waits{seen: make([]time.Duration, 0, 1)}
	net := testNet(t, 1, "v1")
	e := New(Config{Workers: 1, Observer: w}, net)
	defer e.Close()
	x := inputs(2, 0)
	res, err := e.Predict(context.Background(), x, 2, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(res.Probs, direct(net, x, 2)) {
		t.Fatalf("probabilities %v; want %v", res.Probs, direct(net, x, 2))
	}
	if d := e.Stats().Direct; d != 1 {
		t.Fatalf("Direct = %d; want 1", d)
	}
	if len(w.seen) != 1 || w.seen[0] != 0 {
		t.Fatalf("waits reported %v; want [0s]", w.seen)
	}
	if raceEnabled {
		return // the race detector allocates
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if n := testing.AllocsPerRun(100, func() { e.Predict(context.Background(), x, 2, 16) }); n != 1 {
		t.Errorf("%v allocations per direct request; want 1 (the answer)", n)
	}
}

// The requests of one batch share one allocation for their answers; each gets its own rows, capped, so that
// appending to one answer cannot write over the next.
func TestTheAnswersOfABatchAreSeparate(t *testing.T) {
	g := newGate()
	net := testNet(t, 1, "v1")
	e := New(Config{Workers: 1, MaxBatch: 16, Observer: g}, net)
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	got := make([][]float32, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			res, err := e.Predict(context.Background(), inputs(i+1, uint64(i)), i+1, 16)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = res.Probs
		})
	}
	testwait.For(t, "4 queued requests", func() bool { return e.Stats().QueuedRequests == 4 })
	close(g.release)
	wg.Wait()
	testwait.For(t, "the second batch", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.batches) == 2 })
	g.mu.Lock()
	if g.batches[1] != 4 {
		t.Fatalf("batches of %v requests; want the 4 queued ones in one", g.batches)
	}
	g.mu.Unlock()
	for i := range got {
		_ = append(got[i], -1)
	}
	for i, p := range got {
		x := inputs(i+1, uint64(i))
		if want := direct(net, x, i+1); !equal(p, want) {
			t.Errorf("request %d of %d rows: %v; want %v", i, i+1, p, want)
		}
	}
}
