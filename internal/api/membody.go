package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/perceptron-dev/perceptron/internal/membudget"
)

// firstChunk is the buffer a body starts in; it doubles as bytes arrive, each step reserved before it is allocated.
const firstChunk = 64 << 10

// shortWait is the longest a reservation for decoding waits for memory that other requests hold, before the
// request gets a 503: a request that waited longer would mostly be waiting to time out.
const shortWait = 250 * time.Millisecond

// readBody reads r to the end into memory reserved from hold as the bytes arrive, so a client that announces a
// large body and stalls holds only what it sent. hint is the Content-Length (or -1) and limit the most the body may
// hold, beyond which the reader (a MaxBytesReader) fails. When the budget is used up the error is a 503.
func readBody(r io.Reader, hint, limit int64, hold *membudget.Hold) ([]byte, error) {
	return readBodyInto(nil, r, hint, limit, hold)
}

// readBodyInto is readBody starting in scratch, when it has room for the first chunk: a caller that reads many
// small parts reuses one buffer rather than allocating and clearing a chunk for each. The chunk is reserved in hold
// all the same, since it is memory the request uses.
func readBodyInto(scratch []byte, r io.Reader, hint, limit int64, hold *membudget.Hold) ([]byte, error) {
	ceiling := limit + 1
	if hint >= 0 && hint < limit {
		ceiling = hint + 1 // one byte more, to see the end without growing
	}
	size := min(int64(firstChunk), ceiling)
	if err := hold.Grow(size); err != nil {
		return nil, memoryError(err, "the request body")
	}
	var buf []byte
	if int64(cap(scratch)) >= size {
		buf = scratch[:0:size]
	} else {
		buf = make([]byte, 0, size)
	}
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) < cap(buf) {
			continue
		}
		next := min(2*int64(cap(buf)), max(ceiling, int64(cap(buf))+firstChunk))
		if err := hold.Grow(next); err != nil {
			return nil, memoryError(err, "the request body")
		}
		grown := make([]byte, len(buf), next)
		copy(grown, buf)
		// The old buffer is garbage now; the runtime's soft limit, not the budget, sees to its collection.
		hold.Shrink(int64(cap(buf)))
		buf = grown
	}
}

// reserveDecode reserves n bytes for decoding what, waiting a little (shortWait, within ctx) for memory other
// requests hold to come free. what is called only to say what did not fit.
func (s *Server) reserveDecode(ctx context.Context, n int64, what func() string) error {
	err := s.memory.TryReserve(n)
	if err != nil && !errors.Is(err, membudget.ErrNeverFits) {
		ctx, cancel := context.WithTimeout(ctx, shortWait)
		defer cancel()
		err = s.memory.Reserve(ctx, n)
	}
	if err != nil {
		return memoryError(err, what())
	}
	return nil
}

// memoryError maps a refused reservation to its answer: 413 for what could never fit, 503 with Retry-After for
// what does not fit now.
func memoryError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, membudget.ErrNeverFits):
		return &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%s %v (MEMORY_LIMIT)", what, err), Err: err}
	case errors.Is(err, membudget.ErrBusy):
		return &Error{Kind: KindUnavailable, Detail: "overloaded: not enough memory free for " + what + "; retry", RetryAfter: 1, Err: err}
	}
	return err
}
