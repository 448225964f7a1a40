package registry

import (
	"context"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// Watch polls the active pointer of model name every interval and calls swap with the newly active network
// whenever the pointer names a version other than current(). This is how replicas sharing MODEL_DIR converge on a change made through
// any one of them. Errors (a version that does not load yet, say) are passed to onError and retried next tick.
// Watch returns when ctx ends.
func (r *Registry) Watch(ctx context.Context, name string, interval time.Duration, current func() string, swap func(*model.Network), onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		active, err := r.ActiveOf(name)
		if err != nil {
			onError(err)
			continue
		}
		if active == "" && r.embedded != nil && name == r.embedded.Name {
			active = r.embedded.Version
		}
		if active == "" || active == current() {
			continue
		}
		net, err := r.Load(active)
		if err != nil {
			onError(err)
			continue
		}
		swap(net)
	}
}
