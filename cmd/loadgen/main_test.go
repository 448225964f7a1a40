package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestOpenLoopCountsTheWaitForAFreeClient holds the first request at the server: in the open loop the requests due
// meanwhile count the hold in their latency (they were due, the one client was busy); in the closed loop they do not.
func TestOpenLoopCountsTheWaitForAFreeClient(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		open bool
	}{{rate: 10000, open: true}, {rate: 0, open: false}} {
		arrived := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			first := false
			once.Do(func() { first = true })
			if first {
				close(arrived)
				<-release
			}
		}))
		var hold time.Duration
		go func() {
			<-arrived
			t0 := time.Now()
			time.Sleep(200 * time.Millisecond)
			hold = time.Since(t0)
			close(release)
		}()
		o := options{url: srv.URL, concurrency: 1, images: 1, rate: tc.rate}
		rep := load(t.Context(), srv.Client(), o, []byte("x"), "text/plain", 3)
		srv.Close()
		if rep.Requests != 3 || rep.Errors != 0 {
			t.Fatalf("rate %v: %d requests, %d errors; want 3 and 0", tc.rate, rep.Requests, rep.Errors)
		}
		// rep.P50ms is the second slowest of three: request 1 or 2, both due 0.1 ms or less after the start.
		waited := rep.P50ms >= float64(hold-time.Millisecond)/1e6
		if waited != tc.open {
			t.Errorf("rate %v: median latency %.2f ms with the first request held %.2f ms; want the hold counted: %v",
				tc.rate, rep.P50ms, float64(hold)/1e6, tc.open)
		}
	}
}

func TestOpenLoopStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep := load(ctx, srv.Client(), options{url: srv.URL, concurrency: 4, images: 1, rate: 1}, []byte("x"), "text/plain", 0)
	if rep.Requests != 0 {
		t.Fatalf("%d requests after the context ended", rep.Requests)
	}
}
