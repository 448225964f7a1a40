// Decoding in turns: the CPU that preparing images takes, shared fairly between the models being asked for.

package api

import (
	"context"
	"runtime"
	"slices"
	"sync"
)

// turns lets at most n image preparations run at once and, when more wait, grants the next free place to the
// models waiting in turn, oldest request first within a model. Without it a flood of requests for one model,
// each a goroutine decoding images, takes nearly all the CPU from a model asked for by fewer clients: the Go
// scheduler shares the cores between goroutines, not between models. With it a model with waiting requests gets
// the next place but one at the latest whichever model floods, and a lone request waits for nobody. Only the
// decoding of bytes already read takes a place, never reading from the network, so a slow client holds none.
type turns struct {
	mu      sync.Mutex
	free    int
	waiting map[string][]chan struct{} // by model, oldest first
	ring    []string                   // models with waiters, in turn order
	next    int                        // index in ring of the model whose turn is next
}

// newTurns returns turns with n places; 0 means runtime.GOMAXPROCS(0).
func newTurns(n int) *turns {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &turns{free: n, waiting: map[string][]chan struct{}{}}
}

// acquire waits for a place for a request of model, or returns ctx's error when ctx ends first (then holding none).
// A caller that gets nil must call release.
func (t *turns) acquire(ctx context.Context, model string) error {
	t.mu.Lock()
	if t.free > 0 && len(t.ring) == 0 {
		t.free--
		t.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if len(t.waiting[model]) == 0 {
		t.ring = append(t.ring, model)
	}
	t.waiting[model] = append(t.waiting[model], ch)
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		if q := t.waiting[model]; slices.Contains(q, ch) {
			t.remove(model, slices.Index(q, ch))
			t.mu.Unlock()
		} else {
			t.mu.Unlock()
			t.release() // granted meanwhile: pass it on
		}
		return ctx.Err()
	}
}

// release gives the place back: to the oldest waiter of the model whose turn it is, when any waits.
func (t *turns) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ring) == 0 {
		t.free++
		return
	}
	at := t.next % len(t.ring)
	model := t.ring[at]
	ch := t.waiting[model][0]
	if !t.remove(model, 0) {
		t.next = at + 1
	}
	close(ch)
}

// remove takes waiter i of model off its queue and reports whether that emptied the queue, which takes the model
// out of the ring (the models after it move up one place). Callers hold mu.
func (t *turns) remove(model string, i int) bool {
	q := slices.Delete(t.waiting[model], i, i+1)
	if len(q) > 0 {
		t.waiting[model] = q
		return false
	}
	delete(t.waiting, model)
	at := slices.Index(t.ring, model)
	t.ring = slices.Delete(t.ring, at, at+1)
	if at < t.next {
		t.next--
	}
	return true
}
