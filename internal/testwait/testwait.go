// Package testwait gives tests one patience for things that must happen eventually: a training job that ends, a
// server that starts or stops, a replica that follows. A fixed wait (say 60 s) fails a correct program on a loaded
// machine, where a low-priority training thread or a race-instrumented server can be many times slower than on an idle
// one. These waits last until shortly before the test binary's own deadline (go test -timeout), so they only fail on
// a real hang, and then with a message that says what never happened rather than a goroutine dump. Only tests
// import it.
package testwait

import (
	"testing"
	"time"
)

// margin is left before the binary's deadline so the failure is reported before go test kills the binary.
const margin = 20 * time.Second

// fallback is the patience when the binary has no deadline (go test -timeout 0).
const fallback = 10 * time.Minute

// Deadline is when a test should give up waiting.
func Deadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		// A deadline closer than twice the margin still leaves the test half of what remains.
		if left := time.Until(d); left < 2*margin {
			return time.Now().Add(left / 2)
		}
		return d.Add(-margin)
	}
	return time.Now().Add(fallback)
}

// Timeout is how long a test may still wait, for a select with time.After.
func Timeout(t *testing.T) time.Duration { return time.Until(Deadline(t)) }

// For polls cond every few milliseconds until it holds, and fails the test with what it waited for if the deadline
// comes first.
func For(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := Deadline(t)
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", time.Since(start).Round(time.Second), what)
		}
	}
}
