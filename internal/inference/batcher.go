// The workers: how queued requests become batches, one lane at a time, and run through the model.

package inference

import (
	"fmt"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

func (e *Engine) take(r *request) {
	e.depth.Add(-1)
	e.queued.Add(-int64(r.n))
}

// enqueue appends r to its network's lane and wakes a worker.
func (e *Engine) enqueue(r *request) {
	e.qmu.Lock()
	l := e.lanes[r.net]
	if l == nil {
		l = &lane{net: r.net}
		e.lanes[r.net] = l
	}
	if len(l.reqs) == 0 {
		e.ring = append(e.ring, l)
	}
	l.reqs = append(l.reqs, r)
	e.qmu.Unlock()
	e.wake()
}

// wake passes a kick to one idle worker, unless one is already pending.
func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// work is one worker: woken by a kick, it takes a slot, then a batch from the lane whose turn it is, and runs it,
// until the engine closes.
func (e *Engine) work() {
	for {
		select {
		case <-e.kick:
		case <-e.stop:
			e.drain()
			return
		}
		var sl *slot
		select {
		case sl = <-e.slots:
		case <-e.stop:
			e.drain()
			return
		}
		batch, images := e.collect(sl.batch[:0])
		if len(batch) == 0 {
			e.slots <- sl
			continue
		}
		sl.batch = batch
		e.compute(sl, images)
	}
}

// next takes the oldest requests of the lane whose turn it is, as many as fit one batch (at least one), and moves
// the turn on. It passes the kick on when requests remain, so another idle worker takes them. Callers hold qmu.
func (e *Engine) next(batch []*request, images int, from *lane) ([]*request, int, *lane) {
	if len(e.ring) == 0 {
		return batch, images, nil
	}
	at := e.turn % len(e.ring)
	l := e.ring[at]
	if from != nil {
		// Topping up a batch: only its own lane.
		if from.net != l.net {
			at = -1
			for k, c := range e.ring {
				if c == from {
					at = k
				}
			}
			if at < 0 {
				e.wake() // the kick that brought the caller here belongs to another lane
				return batch, images, from
			}
			l = from
		}
	}
	took := 0
	for _, r := range l.reqs {
		if len(batch) > 0 && images+r.n > e.cfg.MaxBatch {
			break
		}
		e.take(r)
		batch = append(batch, r)
		images += r.n
		took++
	}
	clear(l.reqs[:took])
	l.reqs = l.reqs[took:]
	if len(l.reqs) == 0 {
		e.ring = append(e.ring[:at], e.ring[at+1:]...)
		delete(e.lanes, l.net)
		// The lanes after it have moved up one place.
		if from == nil {
			e.turn = at
		} else if at < e.turn {
			e.turn--
		}
	} else if from == nil {
		e.turn = at + 1
	}
	if len(e.ring) > 0 {
		e.wake()
	}
	return batch, images, l
}

// collect forms a batch from the lane whose turn it is. When BatchDelay is set and the batch found company (a burst
// is arriving), it keeps topping the batch up from the same lane until it is full or the delay has passed.
func (e *Engine) collect(batch []*request) ([]*request, int) {
	e.qmu.Lock()
	batch, images, l := e.next(batch, 0, nil)
	e.qmu.Unlock()
	if l == nil || len(batch) < 2 || e.cfg.BatchDelay <= 0 || images >= e.cfg.MaxBatch {
		return batch, images
	}
	t := time.NewTimer(e.cfg.BatchDelay)
	defer t.Stop()
	for images < e.cfg.MaxBatch {
		select {
		case <-e.kick:
		case <-t.C:
			return batch, images
		case <-e.stop:
			return batch, images
		}
		e.qmu.Lock()
		batch, images, _ = e.next(batch, images, l)
		e.qmu.Unlock()
	}
	return batch, images
}

// drain answers ErrClosed to everything left in the queue, so no caller waits forever.
func (e *Engine) drain() {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	for _, l := range e.ring {
		for _, r := range l.reqs {
			e.take(r)
			r.err = ErrClosed
			close(r.done)
		}
		l.reqs = nil
	}
	e.ring = nil
	clear(e.lanes)
}

// compute runs the slot's batch of images and gives the slot back, even if the pass panics (on a caller's goroutine
// net/http would recover the panic, and a lost slot would stall every later request).
func (e *Engine) compute(sl *slot, images int) {
	e.busy.Add(1)
	defer func() {
		e.busy.Add(-1)
		clear(sl.batch) // let the requests go
		e.slots <- sl
	}()
	sl.x = e.run(sl.batch, images, &sl.ws, sl.x)
}

// computeOwn runs r, the request of a caller that took the slot sl itself, in the slot's own request, and gives the
// slot back, even if the pass panics, once it has read the answer.
func (e *Engine) computeOwn(sl *slot, r request) (Result, error) {
	e.busy.Add(1)
	defer func() {
		e.busy.Add(-1)
		clear(sl.batch)
		sl.own = request{} // let the caller's inputs and answer go
		e.slots <- sl
	}()
	sl.own = r
	sl.batch = append(sl.batch[:0], &sl.own)
	sl.x = e.run(sl.batch, r.n, &sl.ws, sl.x)
	if err := r.ctx.Err(); err != nil && sl.own.err == nil {
		// It ended during the pass: answer as a queued request's caller would have been answered.
		return Result{}, err
	}
	return sl.own.res, sl.own.err
}

// run computes one batch, whose requests all run on one network, and answers every request in it.
func (e *Engine) run(batch []*request, images int, ws *model.Workspace[float32], x []float32) []float32 {
	net := batch[0].net
	in, classes := net.MLP.Inputs(), net.MLP.Classes()
	// Keep only callers still waiting and whose rows fit this model.
	live := batch[:0]
	rows := 0
	for _, r := range batch {
		switch {
		case r.ctx.Err() != nil:
			r.err = r.ctx.Err()
			r.finish()
			if e.cfg.Observer != nil {
				e.cfg.Observer.Dropped()
			}
		case r.inputs != in:
			r.err = fmt.Errorf("%w: rows of %d values, model %s takes %d", ErrInput, r.inputs, net.Version, in)
			r.finish()
		default:
			live = append(live, r)
			rows += r.n
		}
	}
	if len(live) == 0 {
		return x
	}
	start := time.Now()
	if e.cfg.Observer != nil {
		for _, r := range live {
			var wait time.Duration // none for a request computed by its caller, which never queued
			if !r.enqueued.IsZero() {
				wait = start.Sub(r.enqueued)
			}
			e.cfg.Observer.Waited(wait)
		}
	}
	// One request alone needs no copy; several are gathered into one matrix.
	in0 := x
	if len(live) == 1 {
		in0 = live[0].x
	} else {
		if cap(x) < rows*in {
			x = make([]float32, rows*in)
		}
		x = x[:rows*in]
		off := 0
		for _, r := range live {
			off += copy(x[off:], r.x)
		}
		in0 = x
	}
	probs, dists, gate := e.forward(net, in0, rows, ws)
	off := 0
	for _, r := range live {
		end := off + r.n
		r.res = Result{Probs: probs[off*classes : end*classes : end*classes], Model: net}
		if dists != nil {
			r.res.Distances = dists[off:end:end]
		}
		if gate != nil {
			r.res.NotDigit = gate[off:end:end]
		}
		off = end
		r.finish()
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.Batch(len(live), rows, time.Since(start))
		if mo, ok := e.cfg.Observer.(ModelObserver); ok {
			mo.BatchOf(net, len(live), rows)
		}
	}
	return x
}

// forward runs rows inputs in slices of at most MaxBatch, returning all probabilities and, when the model has a
// feature distance or a gate, each row's distance or gate score (nil otherwise), all three in one fresh allocation
// that the batch's requests share: each answer is a piece of it, capped so that appending to one copies it.
func (e *Engine) forward(net *model.Network, x []float32, rows int, ws *model.Workspace[float32]) (probs, dists, gate []float32) {
	in, classes := net.MLP.Inputs(), net.MLP.Classes()
	size := rows * classes
	if net.GateMLP != nil {
		size += rows
	}
	if net.Info.FeatureDistance != nil {
		size += rows
	}
	buf := make([]float32, size)
	probs, rest := buf[:0:rows*classes], buf[rows*classes:]
	if net.GateMLP != nil {
		gate, rest = rest[:0:rows], rest[rows:]
	}
	if net.Info.FeatureDistance != nil {
		dists = rest[:0:rows]
	}
	for lo := 0; lo < rows; lo += e.cfg.MaxBatch {
		hi := min(lo+e.cfg.MaxBatch, rows)
		var p []float32
		p, gate = net.ForwardGated(x[lo*in:hi*in], hi-lo, ws, gate)
		probs = append(probs, p...)
		dists = net.Distances(dists, hi-lo, ws)
	}
	return probs, dists, gate
}
