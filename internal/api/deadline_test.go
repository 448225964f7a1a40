package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// TestLazyDeadlineMatchesWithTimeout compares lazyDeadline with context.WithTimeout on the same parent, step by
// step: a timeout already passed (0) or far off, a parent alive or cancelled with a cause, and the steps a request
// takes (waiting on Done, stopping) in either order. After every step both give the same Err, Cause and Done state.
func TestLazyDeadlineMatchesWithTimeout(t *testing.T) {
	cause := errors.New("the client went away")
	for _, timeout := range []time.Duration{0, time.Hour} {
		for _, parentCancelled := range []bool{false, true} {
			for _, steps := range [][]string{{}, {"done"}, {"stop"}, {"done", "stop"}, {"stop", "done"}, {"cause"}, {"value"}} {
				name := fmt.Sprintf("timeout %v, parent cancelled %v, steps %v", timeout, parentCancelled, steps)
				t.Run(name, func(t *testing.T) {
					parent, cancelParent := context.WithCancelCause(context.Background())
					defer cancelParent(nil)
					if parentCancelled {
						cancelParent(cause)
					}
					std, cancel := context.WithTimeout(parent, timeout)
					defer cancel()
					lazy := newLazyDeadline(parent, timeout)
					defer lazy.stop()
					compare := func(when string) {
						t.Helper()
						if got, want := lazy.Err(), std.Err(); got != want {
							t.Errorf("%s: Err() = %v; want %v", when, got, want)
						}
						if got, want := context.Cause(lazy), context.Cause(std); got != want {
							t.Errorf("%s: Cause() = %v; want %v", when, got, want)
						}
						if got, want := closed(lazy.Done()), closed(std.Done()); got != want {
							t.Errorf("%s: Done() closed %v; want %v", when, got, want)
						}
					}
					for _, step := range steps {
						switch step {
						case "done":
							lazy.Done()
							std.Done()
						case "stop":
							lazy.stop()
							cancel()
						case "cause":
							if got, want := context.Cause(lazy), context.Cause(std); got != want {
								t.Errorf("Cause() = %v; want %v", got, want)
							}
						case "value":
							if got := lazy.Value(requestStateKey); got != nil {
								t.Errorf("Value(requestStateKey) = %v; want nil", got)
							}
						}
						if got, want := lazy.Err(), std.Err(); got != want {
							t.Errorf("after %s: Err() = %v; want %v", step, got, want)
						}
					}
					compare("at the end")
				})
			}
		}
	}
}

// closed reports whether done is closed, without waiting.
func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// TestLazyDeadlineArmsOnlyWhenWaitedFor checks that nothing a request does without waiting arms the timer (Err,
// Deadline, the request state's Value), and that waiting on Done does, and wakes the waiter when the time is up.
func TestLazyDeadlineArmsOnlyWhenWaitedFor(t *testing.T) {
	st := &requestState{id: "r1"}
	parent := context.WithValue(context.Background(), requestStateKey, st)
	c := newLazyDeadline(parent, time.Hour)
	defer c.stop()
	if err := c.Err(); err != nil {
		t.Fatalf("Err() = %v; want nil", err)
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(c.start.Add(time.Hour)) {
		t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, c.start.Add(time.Hour))
	}
	if got := stateOf(c); got != st {
		t.Errorf("stateOf = %p; want %p", got, st)
	}
	if c.armed.Load() != nil {
		t.Fatal("armed without anything waiting")
	}

	short := newLazyDeadline(parent, time.Millisecond)
	defer short.stop()
	select {
	case <-short.Done():
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("Done() was not closed when the timeout passed")
	}
	if short.armed.Load() == nil {
		t.Error("waited on without arming")
	}
	if err, cause := short.Err(), context.Cause(short); err != context.DeadlineExceeded || cause != context.DeadlineExceeded {
		t.Errorf("Err(), Cause() = %v, %v; want %v for both", err, cause, context.DeadlineExceeded)
	}
}

// TestLazyDeadlineEndsWhatDerivesFromIt checks that a context derived from a lazyDeadline ends when its time is up,
// with the deadline's error, and that an earlier deadline of the parent is the one Deadline reports.
func TestLazyDeadlineEndsWhatDerivesFromIt(t *testing.T) {
	c := newLazyDeadline(context.Background(), time.Millisecond)
	defer c.stop()
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("the derived context did not end when the timeout passed")
	}
	if err := child.Err(); err != context.DeadlineExceeded {
		t.Errorf("derived Err() = %v; want %v", err, context.DeadlineExceeded)
	}

	parent, cancelParent := context.WithTimeout(context.Background(), time.Minute)
	defer cancelParent()
	pd, _ := parent.Deadline()
	late := newLazyDeadline(parent, time.Hour)
	defer late.stop()
	if d, ok := late.Deadline(); !ok || !d.Equal(pd) {
		t.Errorf("Deadline() = %v, %v; want the parent's %v, true", d, ok, pd)
	}
}

// TestLazyDeadlineConcurrentUse has goroutines check, wait on and stop one lazyDeadline at once (for the race
// detector), and checks that all of them see it end.
func TestLazyDeadlineConcurrentUse(t *testing.T) {
	for range 50 {
		c := newLazyDeadline(context.Background(), time.Hour)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i%2 == 0 {
					select {
					case <-c.Done():
					case <-time.After(testwait.Timeout(t)):
						t.Error("Done() was not closed by stop")
						return
					}
				}
				testwait.For(t, "Err() to report the stop", func() bool { return c.Err() != nil })
			})
		}
		wg.Go(c.stop)
		wg.Wait()
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("Err() = %v; want %v", err, context.Canceled)
		}
	}
}

// TestPredictDeadlineCountsFromTheRequestsStart checks that /predict's timeout runs from when the access log began
// timing the request, in the request's state, and from the call itself for a request without that state.
func TestPredictDeadlineCountsFromTheRequestsStart(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	st := &requestState{start: start}
	r := httptest.NewRequest(http.MethodPost, "/predict", nil)
	r = r.WithContext(context.WithValue(r.Context(), requestStateKey, st))
	c := predictDeadline(r, time.Hour)
	defer c.stop()
	if c != &st.deadline {
		t.Errorf("the deadline is not the request state's")
	}
	if d, _ := c.Deadline(); !d.Equal(start.Add(time.Hour)) {
		t.Errorf("deadline %v; want the request's start %v plus an hour", d, start)
	}
	if stateOf(c) != st {
		t.Errorf("the deadline's context does not carry the request's state")
	}
	c2 := predictDeadline(r, 30*time.Second) // over a minute ago plus 30s: passed
	if !errors.Is(c2.Err(), context.DeadlineExceeded) {
		t.Errorf("a timeout shorter than the time the request has run: Err = %v; want DeadlineExceeded", c2.Err())
	}
	before := time.Now()
	bare := predictDeadline(httptest.NewRequest(http.MethodPost, "/predict", nil), time.Hour)
	defer bare.stop()
	if d, _ := bare.Deadline(); d.Before(before.Add(time.Hour)) {
		t.Errorf("without a request state: deadline %v; want from the call (%v) on", d, before)
	}
}

// TestErrAtIsErrAtThatTime checks errAt against Err: nil for a time within the timeout, DeadlineExceeded (and the
// context armed, so Done agrees) at the timeout, the parent's error first, and Canceled once stopped;
// and for a context that is not a lazyDeadline, its own Err.
func TestErrAtIsErrAtThatTime(t *testing.T) {
	now := time.Now()
	c := newLazyDeadline(context.Background(), time.Minute)
	defer c.stop()
	if err := errAt(c, now); err != nil || c.Err() != nil {
		t.Errorf("within the timeout: errAt = %v, Err = %v; want nil", err, c.Err())
	}
	past := newLazyDeadline(context.Background(), 0)
	defer past.stop()
	if err := errAt(past, past.start); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("at the timeout: errAt = %v; want DeadlineExceeded", err)
	}
	select {
	case <-past.Done():
	default:
		t.Error("errAt reported the deadline but Done is not closed")
	}
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	if err := errAt(newLazyDeadline(parent, time.Minute), now); !errors.Is(err, context.Canceled) {
		t.Errorf("parent cancelled: errAt = %v; want Canceled", err)
	}
	stopped := newLazyDeadline(context.Background(), time.Minute)
	stopped.stop()
	if err := errAt(stopped, now); !errors.Is(err, context.Canceled) {
		t.Errorf("stopped: errAt = %v; want Canceled", err)
	}
	if err := errAt(parent, now); !errors.Is(err, context.Canceled) {
		t.Errorf("another context: errAt = %v; want its Err, Canceled", err)
	}
}
