package inference

import (
	"context"
	"strings"
	"sync"
	"testing"

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
