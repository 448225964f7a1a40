package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestAccessLogAndMetricsAgreeWithTheAnswer sends, through the router's middleware in production order, requests
// that end every way a response can: a status and body, nothing written, a panic before and after the header, an
// unknown route, a wrong method and HEAD. The access log's status and bytes and the duration histogram's code must
// each be the answer the client received, one observation per request, with the metrics middleware sharing the
// access log's response writer.
func TestAccessLogAndMetricsAgreeWithTheAnswer(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	reg := prometheus.NewRegistry()
	s := &Server{metrics: NewMetrics(reg)}
	r := chi.NewRouter()
	r.Use(withRequestID, withAccessLog(log), s.withMetrics, withRecover(zap.NewNop()), middleware.GetHead)
	r.Get("/created", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made")
	})
	r.Get("/silent", func(http.ResponseWriter, *http.Request) {})
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.Get("/late-panic", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "half")
		panic("boom")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	for i, tt := range []struct{ method, path, route string }{
		{"GET", "/created", "/created"},
		{"GET", "/silent", "/silent"},
		{"GET", "/panic", "/panic"},
		{"GET", "/late-panic", "/late-panic"},
		{"GET", "/nowhere", "unmatched"},
		{"POST", "/created", "unmatched"},
		{"HEAD", "/created", "/created"},
	} {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The line is written before the handler returns, so before the answer is complete.
		var entries []observer.LoggedEntry
		for _, e := range logs.TakeAll() {
			if e.Message == "request" {
				entries = append(entries, e)
			}
		}
		if len(entries) != 1 {
			t.Fatalf("%s %s: %d access log lines", tt.method, tt.path, len(entries))
		}
		f := entries[0].ContextMap()
		if f["status"] != int64(resp.StatusCode) || f["route"] != tt.route {
			t.Errorf("%s %s: answered %d; logged %v %v", tt.method, tt.path, resp.StatusCode, f["status"], f["route"])
		}
		if tt.method != "HEAD" && f["bytes"] != int64(len(body)) {
			t.Errorf("%s %s: %d bytes answered; logged %v", tt.method, tt.path, len(body), f["bytes"])
		}
		if got := requestCount(t, reg, tt.route, tt.method, resp.StatusCode); got != 1 {
			t.Errorf("request %d, %s %s: %d observations of code %d", i, tt.method, tt.path, got, resp.StatusCode)
		}
	}
}

// requestCount is how many requests the duration histogram holds for route, method and code.
func requestCount(t *testing.T, reg *prometheus.Registry, route, method string, code int) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "perceptron_http_request_duration_seconds" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"route": route, "method": method, "code": strconv.Itoa(code)}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// TestAccessLogAndMetricsTimeOneSpan checks that the access log prints the very duration the metrics middleware
// observed: the two time a request from one reading of the clock to another, instead of reading it twice each.
func TestAccessLogAndMetricsTimeOneSpan(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	s := &Server{metrics: NewMetrics(reg)}
	r := chi.NewRouter()
	r.Use(withRequestID, withAccessLog(zap.New(core)), s.withMetrics)
	r.Get("/made", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "made") })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/made", nil))
	entries := logs.FilterMessage("request").All()
	if len(entries) != 1 {
		t.Fatalf("%d access log lines; want 1", len(entries))
	}
	logged, ok := entries[0].ContextMap()["duration"].(time.Duration)
	if !ok {
		t.Fatalf("duration field %#v; want a time.Duration", entries[0].ContextMap()["duration"])
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sums []float64
	for _, mf := range mfs {
		if mf.GetName() == "perceptron_http_request_duration_seconds" {
			for _, m := range mf.GetMetric() {
				sums = append(sums, m.GetHistogram().GetSampleSum())
			}
		}
	}
	if len(sums) != 1 || sums[0] != logged.Seconds() {
		t.Errorf("observed durations %v s; want the logged %v", sums, logged)
	}
}
