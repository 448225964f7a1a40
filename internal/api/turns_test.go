package api

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// waiters is how many acquire calls are queued in t.
func (t *turns) waiters() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, q := range t.waiting {
		n += len(q)
	}
	return n
}

// TestDecodingTakesTurnsByModel states the rule as events: with one place held, six requests of model a queue,
// then one of b, then two more of a. Each release grants the next place to the model whose turn it is, so b's
// request is granted second, not seventh, and a's keep their order.
func TestDecodingTakesTurnsByModel(t *testing.T) {
	tr := newTurns(1)
	if err := tr.acquire(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queue := func(model, name string) {
		n := tr.waiters()
		wg.Go(func() {
			if err := tr.acquire(context.Background(), model); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			tr.release()
		})
		testwait.For(t, name+" to queue", func() bool { return tr.waiters() == n+1 })
	}
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
		queue("a", name)
	}
	queue("b", "b1")
	queue("a", "a7")
	queue("a", "a8")
	tr.release()
	wg.Wait()
	if got := strings.Join(order, " "); got != "a1 b1 a2 a3 a4 a5 a6 a7 a8" {
		t.Errorf("places granted in the order %s; want a1 b1 a2 ... a8", got)
	}
	// Every place is back: as many acquire at once as there are places, none waiting.
	if err := tr.acquire(context.Background(), "c"); err != nil || tr.free != 0 || tr.waiters() != 0 {
		t.Errorf("after everything was released: %v, %d places free, %d waiting; want the one place", err, tr.free, tr.waiters())
	}
}

// TestAWaiterWhoseRequestEndsLeavesTheQueue: a cancelled waiter is taken off its model's queue, so the place goes to
// the next waiter and no place is lost.
func TestAWaiterWhoseRequestEndsLeavesTheQueue(t *testing.T) {
	tr := newTurns(1)
	tr.acquire(context.Background(), "a")
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() { gone <- tr.acquire(ctx, "b") }()
	testwait.For(t, "b to queue", func() bool { return tr.waiters() == 1 })
	granted := make(chan struct{})
	go func() {
		tr.acquire(context.Background(), "c")
		close(granted)
	}()
	testwait.For(t, "c to queue", func() bool { return tr.waiters() == 2 })
	cancel()
	if err := <-gone; err != context.Canceled {
		t.Fatalf("cancelled acquire returned %v; want context.Canceled", err)
	}
	if tr.waiters() != 1 {
		t.Fatalf("%d waiting after b gave up; want c alone", tr.waiters())
	}
	tr.release()
	<-granted
	tr.release()
	if tr.free != 1 || len(tr.ring) != 0 {
		t.Errorf("%d places free, ring %v; want the one place back and nobody waiting", tr.free, tr.ring)
	}
}
