package registry

import (
	"context"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// maxBackoff bounds the wait between polls of a store that keeps failing.
const maxBackoff = 30 * time.Second

// Watch polls the active pointer of model name every interval and calls swap with the newly active network
// whenever the pointer names a version other than current(). This is how replicas sharing the store converge on a
// change made through any one of them. In a bucket each poll refreshes every pointer this replica has read (see
// Refresh), so that the other models it serves follow their activations too, without a request to the bucket per
// prediction. Errors (a version that does not load yet, an unreachable bucket) are passed to onError and retried,
// the wait doubling up to maxBackoff while the store fails. Watch returns when ctx ends.
func (r *Registry) Watch(ctx context.Context, name string, interval time.Duration, current func() string, swap func(*model.Network), onError func(error)) {
	wait := interval
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wait = r.poll(ctx, name, current, swap, onError, interval, wait)
		t.Reset(wait)
	}
}

// poll is one tick of Watch; it returns the wait before the next.
func (r *Registry) poll(ctx context.Context, name string, current func() string, swap func(*model.Network), onError func(error), interval, wait time.Duration) time.Duration {
	backoff := min(max(2*wait, interval), max(maxBackoff, interval))
	if err := r.Refresh(ctx); err != nil {
		onError(err)
		return backoff
	}
	active, err := r.ActiveOf(name)
	if err != nil {
		onError(err)
		return backoff
	}
	if active == "" && r.embedded != nil && name == r.embedded.Name {
		active = r.embedded.Version
	}
	if active == "" || active == current() {
		return interval
	}
	net, err := r.Load(active)
	if err != nil {
		onError(err)
		return interval
	}
	swap(net)
	return interval
}
