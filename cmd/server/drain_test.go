package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// TestStopWithDefaultSettingsLosesNoRequest keeps 16 clients predicting over kept-alive connections and stops the
// server (as SIGTERM does) with the default settings, DRAIN_DELAY=0 included. Every request sent on a kept-alive
// connection must get its answer: the drain answers with Connection: close and leaves each connection until it
// has had that answer or sat idle, before closing it. A client whose connection was closed that way then finds
// the listener closed (connection refused on a fresh connection), which is the end of its run, not a failure.
func TestStopWithDefaultSettingsLosesNoRequest(t *testing.T) {
	base, stop := startServer(t, nil)
	img, _ := mnistPNG(t, 0)
	const clients = 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var answered, closeAnswers, failed atomic.Int64
	var firstErr atomic.Value
	warm := make(chan struct{}, clients) // one per client, after its third answer on a kept-alive connection
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			deadline := testwait.Deadline(t)
			for n := 0; time.Now().Before(deadline); n++ {
				var reused bool
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
					"POST", base+"/predict", bytes.NewReader(img))
				req.Header.Set("Content-Type", "image/png")
				resp, err := client.Do(req)
				if err != nil {
					if !reused && errors.Is(err, syscall.ECONNREFUSED) {
						return // the listener is closed: this client's run is over
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					return
				}
				answered.Add(1)
				if resp.Close {
					closeAnswers.Add(1)
				}
				if n == 2 {
					warm <- struct{}{}
				}
			}
			failed.Add(1)
			firstErr.CompareAndSwap(nil, "the server never stopped answering")
		})
	}
	for range clients {
		select {
		case <-warm:
		case <-time.After(testwait.Timeout(t)):
			t.Fatal("the clients did not get going")
		}
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v after the stop; want nil", err)
	}
	wg.Wait()
	t.Logf("%d requests answered, %d of them with Connection: close; %d failed", answered.Load(), closeAnswers.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the shutdown (first: %v)", failed.Load(), firstErr.Load())
	}
}
