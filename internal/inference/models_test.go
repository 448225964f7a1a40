package inference

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// orderGate is a gate that also records which network ran each batch, in order.
type orderGate struct {
	*gate
	mu    sync.Mutex
	order []string
}

func (g *orderGate) BatchOf(net *model.Network, _, _ int) {
	g.mu.Lock()
	g.order = append(g.order, net.Version)
	g.mu.Unlock()
}

// TestAFloodOfOneModelCannotStarveAnother states the fairness rule as events: while one worker is busy, 12 requests
// for model A queue, then one for model B. Lanes take turns one batch each, so B's request runs in the first or
// second batch after the busy one, not after A's twelve; and no batch mixes the two.
func TestAFloodOfOneModelCannotStarveAnother(t *testing.T) {
	g := &orderGate{gate: newGate()}
	a, b := testNet(t, 1, "a-1"), testNet(t, 2, "b-1")
	a.Name, b.Name = "a", "b"
	e := New(Config{Workers: 1, MaxBatch: 1, Observer: g}, a)
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered // the worker is busy with a batch of A
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if _, err := e.PredictOn(context.Background(), a, inputs(1, uint64(i)), 1, 16); err != nil {
				t.Error(err)
			}
		})
	}
	testwait.For(t, "12 queued requests for A", func() bool { return e.Stats().QueuedRequests == 12 })
	var got Result
	wg.Go(func() {
		var err error
		if got, err = e.PredictOn(context.Background(), b, inputs(1, 99), 1, 16); err != nil {
			t.Error(err)
		}
	})
	testwait.For(t, "B queued behind them", func() bool { return e.Stats().QueuedRequests == 13 })
	close(g.release)
	wg.Wait()
	if got.Model != b || !equal(got.Probs, direct(b, inputs(1, 99), 1)) {
		t.Errorf("B's request ran on %s; want b-1's answer", got.Model.Version)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	order := strings.Join(g.order, " ")
	if len(g.order) != 14 || g.order[0] != "a-1" || (g.order[1] != "b-1" && g.order[2] != "b-1") {
		t.Errorf("batches ran in the order %s; want B's within the first two after the busy one", order)
	}
}

// TestBatchesAreFormedPerModel: requests for two networks queued together run as one batch per network.
func TestBatchesAreFormedPerModel(t *testing.T) {
	g := &orderGate{gate: newGate()}
	a, b := testNet(t, 1, "a-1"), testNet(t, 2, "b-1")
	e := New(Config{Workers: 1, MaxBatch: 64, Observer: g}, a)
	defer e.Close()
	go e.Predict(context.Background(), inputs(1, 0), 1, 16)
	<-g.entered
	var wg sync.WaitGroup
	for i := range 10 {
		net := a
		if i%2 == 1 {
			net = b
		}
		wg.Go(func() {
			r, err := e.PredictOn(context.Background(), net, inputs(1, uint64(i)), 1, 16)
			if err != nil || r.Model != net || !equal(r.Probs, direct(net, inputs(1, uint64(i)), 1)) {
				t.Errorf("request %d: %v, ran on %v; want %s's answer", i, err, r.Model, net.Version)
			}
		})
	}
	testwait.For(t, "10 queued requests", func() bool { return e.Stats().QueuedRequests == 10 })
	close(g.release)
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if strings.Join(g.order, " ") != "a-1 a-1 b-1" && strings.Join(g.order, " ") != "a-1 b-1 a-1" {
		t.Errorf("batches ran %v of %v requests; want the busy one, then one batch of 5 per network", g.order, g.gate.batches)
	}
	if bs := g.gate.batches; len(bs) != 3 || bs[1] != 5 || bs[2] != 5 {
		t.Errorf("batches of %v requests; want [1 5 5]", bs)
	}
}

// refill is an Observer that, after every pass, holds the slot until all but one of the clients have queued again
// (the one may be the caller of a pass on an idle engine, which cannot queue while it computes), so each pass finds
// a full queue however the machine schedules the clients. It records each pass's network and requests.
type refill struct {
	e       *Engine
	clients int64
	stop    atomic.Bool
	mu      sync.Mutex
	passes  []string // "version:requests"
	wait    func(func() bool)
}

func (r *refill) Batch(int, int, time.Duration) {}
func (r *refill) Waited(time.Duration)          {}
func (r *refill) Dropped()                      {}
func (r *refill) BatchOf(net *model.Network, requests, _ int) {
	r.mu.Lock()
	r.passes = append(r.passes, fmt.Sprintf("%s:%d", net.Version, requests))
	r.mu.Unlock()
	r.wait(func() bool { return r.stop.Load() || r.e.Stats().QueuedRequests >= int(r.clients-1) })
}

// TestUnderATwoModelLoadEachPassTakesOneModelsQueue keeps 8 clients of model A and 8 of model B sending one request
// after another to a one-worker engine. With both models' requests waiting at every pass, every pass must carry one
// model only, all (at least 7) of its waiting requests in one batch, and the models must alternate: batches still
// form per model when two models share the workers.
func TestUnderATwoModelLoadEachPassTakesOneModelsQueue(t *testing.T) {
	a, b := testNet(t, 1, "a-1"), testNet(t, 2, "b-1")
	a.Name, b.Name = "a", "b"
	const clients, passes = 16, 30
	obs := &refill{clients: clients}
	deadline := testwait.Deadline(t)
	obs.wait = func(cond func() bool) { // on a worker's goroutine, where t.Fatal must not be called
		for !cond() {
			if time.Now().After(deadline) {
				t.Error("the clients never queued again")
				obs.stop.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}
	e := New(Config{Workers: 1, MaxBatch: 64, Observer: obs}, a)
	obs.e = e
	defer e.Close()
	var wg sync.WaitGroup
	for i := range clients {
		net := []*model.Network{a, b}[i%2]
		x := inputs(1, uint64(i))
		want := direct(net, x, 1)
		wg.Go(func() {
			for !obs.stop.Load() {
				r, err := e.PredictOn(context.Background(), net, x, 1, 16)
				if err != nil || r.Model != net || !equal(r.Probs, want) {
					t.Errorf("client %d: %v, ran on %v; want %s's answer", i, err, r.Model, net.Version)
					return
				}
			}
		})
	}
	testwait.For(t, fmt.Sprint(passes, " passes"), func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.passes) >= passes
	})
	obs.stop.Store(true)
	wg.Wait()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// The first pass ran before the queue filled; from the second on the queue is full at every pass.
	got := obs.passes[1:passes]
	for k, p := range got {
		version, requests, _ := strings.Cut(p, ":")
		if n, _ := strconv.Atoi(requests); n < clients/2-1 {
			t.Errorf("pass %d ran %s; want at least %d requests of one model", k+1, p, clients/2-1)
		}
		if prev, _, _ := strings.Cut(got[max(k-1, 0)], ":"); k > 0 && prev == version {
			t.Errorf("passes %d and %d both ran %s; want the models to take turns (%v)", k, k+1, version, got)
		}
	}
}
