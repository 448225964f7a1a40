// Package membudget is the process's memory budget: a number of bytes that every large consumer (request bodies
// being held, decoded images, preprocessing scratch, data set imports, training jobs) reserves before it allocates,
// and gives back when it is done. It knows nothing of what the bytes are for; it only counts them, so the sum of
// what the process holds on purpose stays under one limit however requests arrive.
//
// Unlike a FIFO semaphore, a waiting reservation never blocks a smaller one that fits: a small image is not queued
// behind a large one. A large one can therefore wait longer; its context bounds how long.
//
// The package also reads the limit the process runs under (MEMORY_LIMIT, else the cgroup's) in limit.go.
package membudget

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrNeverFits is wrapped by the error of a reservation larger than the whole budget: waiting cannot help, so the
// request is too large (HTTP 413 or 422).
var ErrNeverFits = errors.New("membudget: more memory than the whole budget")

// ErrBusy is wrapped by the error of a reservation that does not fit now, because other work holds the memory:
// retrying later can help (HTTP 503 with Retry-After).
var ErrBusy = errors.New("membudget: memory budget in use")

// Error says how much a refused reservation asked for and what was available.
type Error struct {
	Kind error // ErrNeverFits or ErrBusy
	Need int64 // bytes asked for
	Free int64 // bytes free when it was refused
	Size int64 // the whole budget
	Err  error // the context's error, when waiting ended that way
}

func (e *Error) Error() string {
	if e.Kind == ErrNeverFits {
		return fmt.Sprintf("needs %s of memory, more than the whole budget of %s", Format(e.Need), Format(e.Size))
	}
	return fmt.Sprintf("needs %s of memory; %s of %s free now", Format(e.Need), Format(e.Free), Format(e.Size))
}

// Unwrap returns the kind and the context's error, so errors.Is works with both.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Budget counts reserved bytes against a fixed size. The zero value is not usable; call New. A nil *Budget is
// unlimited: every reservation succeeds at once and nothing is counted.
type Budget struct {
	size int64

	mu      sync.Mutex
	used    int64
	peak    int64
	changed chan struct{} // closed and replaced when memory is released while someone waits for it
	waiters int           // the Reserve calls waiting on changed
}

// New returns a budget of size bytes (at least 1).
func New(size int64) *Budget {
	return &Budget{size: max(size, 1), changed: make(chan struct{})}
}

// Size is the whole budget in bytes.
func (b *Budget) Size() int64 {
	if b == nil {
		return 0
	}
	return b.size
}

// Used is the bytes reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most bytes ever reserved at once.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Fits reports whether n bytes could ever be reserved, that is whether n is at most the whole budget.
func (b *Budget) Fits(n int64) error {
	if b == nil || n <= b.size {
		return nil
	}
	return &Error{Kind: ErrNeverFits, Need: n, Size: b.size}
}

// TryReserve reserves n bytes if they are free now, and otherwise fails at once with ErrBusy (or ErrNeverFits).
func (b *Budget) TryReserve(n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if err := b.Fits(n); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.size {
		return &Error{Kind: ErrBusy, Need: n, Free: b.size - b.used, Size: b.size}
	}
	b.take(n)
	return nil
}

// Reserve reserves n bytes, waiting until they are free or ctx is done. A reservation larger than the budget fails
// at once with ErrNeverFits; one that ctx ends fails with ErrBusy and the context's error.
func (b *Budget) Reserve(ctx context.Context, n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if err := b.Fits(n); err != nil {
		return err
	}
	waiting := false
	for {
		b.mu.Lock()
		if waiting {
			b.waiters--
		}
		if b.used+n <= b.size {
			b.take(n)
			b.mu.Unlock()
			return nil
		}
		changed, free := b.changed, b.size-b.used
		b.waiters++
		waiting = true
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			b.mu.Lock()
			b.waiters--
			b.mu.Unlock()
			return &Error{Kind: ErrBusy, Need: n, Free: free, Size: b.size, Err: ctx.Err()}
		}
	}
}

func (b *Budget) take(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// Release gives back n bytes of earlier reservations.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.used {
		panic("membudget: released more than was reserved") // a programming error
	}
	b.used -= n
	if b.waiters > 0 { // without a waiter, releasing (once or twice per image served) allocates nothing
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// Hold is a reservation that grows as its owner needs more (a body being read, say) and is released as a whole.
// A Hold is used by one goroutine at a time.
type Hold struct {
	b *Budget
	n int64
}

// Hold returns an empty reservation on b.
func (b *Budget) Hold() *Hold { return &Hold{b: b} }

// HoldIn makes *h an empty reservation on b and returns h, for a Hold that lives inside a value its owner already
// allocated. h must hold nothing.
func (b *Budget) HoldIn(h *Hold) *Hold {
	if h.n != 0 {
		panic("membudget: HoldIn on a Hold that still holds memory")
	}
	*h = Hold{b: b}
	return h
}

// Held is the bytes the Hold has reserved.
func (h *Hold) Held() int64 { return h.n }

// Grow reserves n more bytes without waiting (see TryReserve).
func (h *Hold) Grow(n int64) error {
	if err := h.b.TryReserve(n); err != nil {
		return err
	}
	h.n += max(n, 0)
	return nil
}

// GrowWait reserves n more bytes, waiting while ctx allows (see Reserve).
func (h *Hold) GrowWait(ctx context.Context, n int64) error {
	if err := h.b.Reserve(ctx, n); err != nil {
		return err
	}
	h.n += max(n, 0)
	return nil
}

// Release gives back everything the Hold has reserved; the Hold can be grown again afterwards.
func (h *Hold) Release() {
	h.b.Release(h.n)
	h.n = 0
}

// Shrink gives back n of the bytes the Hold has reserved, when its owner let go of part of what it held.
func (h *Hold) Shrink(n int64) {
	n = min(n, h.n)
	h.b.Release(n)
	h.n -= n
}
