// A deadline that arms its timer only when something waits for it.

package api

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is context.WithTimeout(parent, timeout) whose timer is armed only when something has to be woken when
// the time is up: when Done is called (a select that waits), or Value with any key but the request state's (a
// context derived from it looks that way for the cancellation to join, and context.Cause for its cause). Until then
// Err reads the clock itself. A request that nothing makes wait (an idle engine, memory and decoding places free)
// never arms a timer, which costs more than the few readings of the clock it makes instead.
//
// Once armed, everything is the armed context's: context.WithDeadline's Err, Done, Cause and derived contexts. Before,
// Err answers what that context would: the parent's error, or DeadlineExceeded once the timeout has passed, or
// Canceled once stop was called; and it arms before it answers either of the last two, so that Done, which is then
// closed, and Cause agree with it. One order differs: when the timeout passes and then the parent ends, both before
// anything looks, Err reports the parent's end where WithTimeout's timer would have reported the deadline. Nothing
// looks only while one image is decoded or one batch computed in the request's goroutine, and a timer under load
// fires that late too.
type lazyDeadline struct {
	parent  context.Context
	start   time.Time // with its monotonic reading, which time.Since uses
	timeout time.Duration

	armed   atomic.Pointer[armedDeadline]
	mu      sync.Mutex  // serialises arm and stop
	stopped atomic.Bool // stop was called (set with mu held)
}

// armedDeadline is the context.WithDeadline a lazyDeadline became, and its cancel function.
type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// newLazyDeadline is context.WithTimeout(parent, timeout), whose CancelFunc is stop.
func newLazyDeadline(parent context.Context, timeout time.Duration) *lazyDeadline {
	return &lazyDeadline{parent: parent, start: time.Now(), timeout: timeout}
}

// predictDeadline is newLazyDeadline(r.Context(), timeout) for a request that the middleware keeps a state for, made
// inside that state and timed from when the access log began timing the request: the time the request has been
// handled already counts against its timeout, and the clock is not read again.
func predictDeadline(r *http.Request, timeout time.Duration) *lazyDeadline {
	st := stateOf(r.Context())
	if st == nil || st.start.IsZero() {
		return newLazyDeadline(r.Context(), timeout)
	}
	st.deadline = lazyDeadline{parent: r.Context(), start: st.start, timeout: timeout}
	return &st.deadline
}

// arm returns the context.WithDeadline behind c, making it the first time; it is already cancelled when stop came
// first.
func (c *lazyDeadline) arm() context.Context {
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	ctx, cancel := context.WithDeadline(c.parent, c.start.Add(c.timeout))
	if c.stopped.Load() {
		cancel()
	}
	c.armed.Store(&armedDeadline{ctx, cancel})
	return ctx
}

// stop is the context's CancelFunc: it releases the timer, if armed, and ends the context with Canceled unless it
// had ended already.
func (c *lazyDeadline) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped.Store(true)
	if a := c.armed.Load(); a != nil {
		a.cancel()
	}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) {
	d := c.start.Add(c.timeout)
	if pd, ok := c.parent.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

func (c *lazyDeadline) Done() <-chan struct{} { return c.arm().Done() }

func (c *lazyDeadline) Err() error { return c.errAt(time.Now()) }

// errAt is Err when the clock reads now, for a caller that has just read it anyway.
func (c *lazyDeadline) errAt(now time.Time) error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if c.stopped.Load() || now.Sub(c.start) >= c.timeout {
		return c.arm().Err()
	}
	return nil
}

// errAt is ctx.Err() when the clock reads now: a lazyDeadline does not read the clock again.
func errAt(ctx context.Context, now time.Time) error {
	if c, ok := ctx.(*lazyDeadline); ok {
		return c.errAt(now)
	}
	return ctx.Err()
}

func (c *lazyDeadline) Value(key any) any {
	if key == requestStateKey {
		return c.parent.Value(key)
	}
	return c.arm().Value(key)
}
