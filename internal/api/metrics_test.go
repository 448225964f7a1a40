package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// predictOnlyServer is the API over the embedded model with one worker and its own metrics registry, nothing else:
// what the metrics tests count is then only what they send.
func predictOnlyServer(t *testing.T) (http.Handler, *prometheus.Registry, *Metrics, *model.Network) {
	t.Helper()
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	e := inference.New(inference.Config{Workers: 1, Observer: m}, net)
	t.Cleanup(e.Close)
	m.RegisterEngine(reg, e)
	return NewServer(zap.NewNop(), Config{}, reg, m, e, nil, nil, nil), reg, m, net
}

func TestMetricsFollowConventionsAndCountWhatHappens(t *testing.T) {
	h, reg, m, net := predictOnlyServer(t)

	img, label := digitPNG(t, 0)
	for range 3 {
		req, _ := http.NewRequest("POST", "/predict", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/png")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("predict: %d", w.Code)
		}
	}
	req, _ := http.NewRequest("POST", "/predict", strings.NewReader("x"))
	req.Header.Set("Content-Type", "text/plain")
	h.ServeHTTP(httptest.NewRecorder(), req)

	if got := testutil.ToFloat64(m.classified.WithLabelValues(net.Labels[label])); got != 3 {
		t.Errorf("images_classified_total{label=%q} = %v; want 3", net.Labels[label], got)
	}
	if got := testutil.ToFloat64(m.rejections.WithLabelValues(RejectUnsupported)); got != 1 {
		t.Errorf("rejections_total{reason=unsupported} = %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.modelInfo.WithLabelValues(net.Name, net.Version)); got != 1 {
		t.Errorf("model_info = %v; want 1", got)
	}
	if n := testutil.CollectAndCount(m.requestDuration); n != 2 {
		t.Errorf("%d request duration series; want 2 (200 and 415 on /predict)", n)
	}
	if err := testutil.CollectAndCompare(m.batchSize, strings.NewReader(`
# HELP perceptron_inference_batch_size Images per forward pass, by model name (a request reaches a batch only for a model the registry holds, so the names are bounded by its models).
# TYPE perceptron_inference_batch_size histogram
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="1"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="2"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="4"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="8"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="16"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="32"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="64"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="128"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="256"} 3
perceptron_inference_batch_size_bucket{model="mnist-mlp",le="+Inf"} 3
perceptron_inference_batch_size_sum{model="mnist-mlp"} 3
perceptron_inference_batch_size_count{model="mnist-mlp"} 3
`)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "perceptron_") {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	}

	// Swaps and job figures.
	m.Swapped(net)
	if got := testutil.ToFloat64(m.swaps); got != 1 {
		t.Errorf("model_swaps_total = %v; want 1", got)
	}
	m.Jobs([]train.Job{{Status: train.StatusRunning, Progress: train.JobProgress{Fraction: 0.5, Loss: 0.3, ValAccuracy: 0.9}},
		{Status: train.StatusSucceeded}, {Status: train.StatusSucceeded}})
	if got := testutil.ToFloat64(m.jobs.WithLabelValues(train.StatusSucceeded)); got != 2 {
		t.Errorf("training_jobs{status=succeeded} = %v; want 2", got)
	}
	if got := testutil.ToFloat64(m.jobProgress); got != 0.5 {
		t.Errorf("training_progress_ratio = %v; want 0.5", got)
	}

	// The endpoint serves it all, route patterns as labels.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{
		`perceptron_http_request_duration_seconds_bucket{code="200",method="POST",route="/predict",le="0.0005"}`,
		`perceptron_inference_queue_depth 0`, `perceptron_inference_direct_requests_total `, `go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestDashboardQueriesNameRealMetrics keeps the Grafana dashboard honest: every perceptron_ metric its queries use
// must be one the server exports.
func TestDashboardQueriesNameRealMetrics(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/perceptron-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	net, _ := model.Default()
	e := inference.New(inference.Config{Workers: 1, Observer: m}, net)
	defer e.Close()
	m.RegisterEngine(reg, e)
	m.Jobs([]train.Job{{Status: train.StatusRunning}})
	m.requestDuration.WithLabelValues("/predict", "POST", "200").Observe(0.001)
	m.classified.WithLabelValues("7").Inc()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	name := regexp.MustCompile(`perceptron_[a-z_]+`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				used++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				if !exported[n] && !exported[base] {
					t.Errorf("panel %q queries %s, which the server does not export", p.Title, n)
				}
			}
		}
	}
	if used < 10 {
		t.Errorf("only %d metric references found in the dashboard", used)
	}
}

// rejectionCounts reads rejections_total by reason.
func rejectionCounts(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, r := range rejectReasons {
		out[r] = testutil.ToFloat64(m.rejections.WithLabelValues(r))
	}
	if n := testutil.CollectAndCount(m.rejections); n != len(rejectReasons) {
		t.Errorf("rejections_total has %d series; want one per reason, %d", n, len(rejectReasons))
	}
	return out
}

// TestRejectionReasonsSayWhatHappened sends requests that are refused for different reasons and checks that each
// is counted once, under the reason that names what happened and under no other.
func TestRejectionReasonsSayWhatHappened(t *testing.T) {
	ts := newTestStack(t, Config{AdminFailLimit: 1, MaxBodyBytes: 16 << 10})
	url := ts.srv.URL
	infer := "/v2/models/" + ts.engine.Model().Name + "/infer"
	ragged := `{"inputs":[{"name":"input","shape":[2,784],"datatype":"FP32","data":[[` +
		strings.Repeat("0.5,", 699) + `0.5],[` + strings.Repeat("0.5,", 867) + `0.5]]}]}`
	type request struct {
		method, path, contentType, token, body string
		header                                 map[string]string
	}
	for _, tt := range []struct {
		name   string
		req    request
		status int
		reason string // "" means not counted at all
	}{
		{"a wrong admin token is unauthorized", request{"GET", "/models", "", "guess", "", nil}, 401, RejectUnauthorized},
		{"a wrong token past the failure limit is auth_limited, not overloaded", request{"GET", "/models", "", "guess", "", nil}, 429, RejectAuthLimited},
		{`{"hidden":[-1]} is an invalid request, not undecodable`, request{"POST", "/train", "application/json", testToken, `{"hidden":[-1]}`, nil}, 422, RejectInvalid},
		{"malformed JSON is an invalid request", request{"POST", "/predict", "application/json", "", `{"inputs": [`, nil}, 400, RejectInvalid},
		{"inputs out of range are an invalid request", request{"POST", "/predict", "application/json", "", `{"inputs": [[2]]}`, nil}, 422, RejectInvalid},
		{"bytes that are no image are undecodable", request{"POST", "/predict", "image/png", "", "hello", nil}, 422, RejectUndecodable},
		{"an unknown media type is unsupported", request{"POST", "/predict", "text/plain", "", "hello", nil}, 415, RejectUnsupported},
		{"a compressed body is unsupported", request{"POST", "/predict", "image/png", "", "hello", map[string]string{"Content-Encoding": "gzip"}}, 415, RejectUnsupported},
		{"a body over the limit is too large", request{"POST", "/predict", "image/png", "", strings.Repeat("x", 20<<10), nil}, 413, RejectTooLarge},
		{"a method the route lacks is method_not_allowed", request{"PUT", "/predict", "", "", "", nil}, 405, RejectMethod},
		{"a ragged /v2 tensor is an invalid request", request{"POST", infer, "application/json", "", ragged, nil}, 400, RejectInvalid},
		{"a compressed /v2 body is unsupported", request{"POST", infer, "application/json", "", "{}", map[string]string{"Content-Encoding": "br"}}, 415, RejectUnsupported},
		{"an unknown route is not a rejection", request{"GET", "/nope", "", "", "", nil}, 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := rejectionCounts(t, ts.metrics)
			req, _ := http.NewRequest(tt.req.method, url+tt.req.path, strings.NewReader(tt.req.body))
			if tt.req.contentType != "" {
				req.Header.Set("Content-Type", tt.req.contentType)
			}
			if tt.req.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.req.token)
			}
			for k, v := range tt.req.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d; want %d", resp.StatusCode, tt.status)
			}
			after := rejectionCounts(t, ts.metrics)
			for _, r := range rejectReasons {
				want := before[r]
				if r == tt.reason {
					want++
				}
				if after[r] != want {
					t.Errorf("rejections_total{reason=%q} went from %v to %v; want %v", r, before[r], after[r], want)
				}
			}
		})
	}

	t.Run("a readiness probe while draining is not a rejection", func(t *testing.T) {
		ts := newTestStack(t, Config{})
		ts.server.Drain()
		before := rejectionCounts(t, ts.metrics)
		req, _ := http.NewRequest("GET", ts.srv.URL+"/readyz", nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz while draining: %d; want 503", r.StatusCode)
		}
		after := rejectionCounts(t, ts.metrics)
		for _, reason := range rejectReasons {
			if after[reason] != before[reason] {
				t.Errorf("rejections_total{reason=%q} went from %v to %v; want no change", reason, before[reason], after[reason])
			}
		}
	})

	t.Run("a prediction after the engine has closed is shutting_down, not overloaded", func(t *testing.T) {
		ts := newTestStack(t, Config{})
		ts.engine.Close()
		before := rejectionCounts(t, ts.metrics)
		img, _ := digitPNG(t, 0)
		resp, body := post(t, ts.srv.URL+"/predict", "image/png", img)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%d %s; want 503", resp.StatusCode, body)
		}
		if got := rejectionCounts(t, ts.metrics)[RejectShuttingDown] - before[RejectShuttingDown]; got != 1 {
			t.Errorf("rejections_total{reason=shutting_down} rose by %v; want 1", got)
		}
		if got := rejectionCounts(t, ts.metrics)[RejectOverloaded] - before[RejectOverloaded]; got != 0 {
			t.Errorf("rejections_total{reason=overloaded} rose by %v; want 0", got)
		}
	})
}

// TestRejectionReasonOfEachError names the reason of errors as the handlers build them, for the refusals a test
// cannot provoke on demand (a full queue, a model swapped mid-request, a client that went away).
func TestRejectionReasonOfEachError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"a full inference queue is overloaded", &Error{Kind: KindUnavailable, Err: inference.ErrOverloaded}, RejectOverloaded},
		{"a closed engine is shutting down", &Error{Kind: KindUnavailable, Err: inference.ErrClosed}, RejectShuttingDown},
		{"a model swapped mid-request", &Error{Kind: KindUnavailable, Err: inference.ErrInput}, RejectModelChanged},
		{"a full training queue", asError(train.ErrQueueFull), RejectTrainingQueueFull},
		{"an invalid training request", asError(fmt.Errorf("%w: hidden", train.ErrInvalid)), RejectInvalid},
		{"a client that went away", context.Canceled, RejectCancelled},
		{"a deadline", context.DeadlineExceeded, RejectTimeout},
		{"a busy memory budget", &Error{Kind: KindUnavailable, Err: membudget.ErrBusy}, RejectMemory},
		{"an image that is not one", &Error{Kind: KindUnprocessable, Err: fmt.Errorf("x: %w", imageprep.ErrUndecodable)}, RejectUndecodable},
		{"an image format not read is unsupported, not undecodable", &Error{Kind: KindUnsupported, Err: imageprep.ErrUnsupported}, RejectUnsupported},
		{"another 503", &Error{Kind: KindUnavailable}, RejectUnavailable},
		{"a 404 is not counted", &Error{Kind: KindNotFound}, ""},
		{"an internal error is not counted", errors.New("boom"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rejectionReason(asError(tt.err)); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestAnswerCountsFollowEachModelsNameAndLabels(t *testing.T) {
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	answer := func(n *model.Network, class int) {
		probs := make([]float32, len(n.Labels))
		probs[class] = 1
		m.countAnswers(inference.Result{Probs: probs, Model: n}, nil, 0.5)
	}
	relabelled := *net
	relabelled.Labels = make([]string, len(net.Labels))
	for i := range relabelled.Labels {
		relabelled.Labels[i] = fmt.Sprintf("class-%d", i)
	}
	answer(net, 3)
	answer(net, 3)
	answer(&relabelled, 3) // the same name with other labels: counted under its own labels
	answer(net, 3)
	for i := range maxModelLabels - 1 { // with net's, maxModelLabels names
		other := *net
		other.Name = fmt.Sprintf("model-%d", i)
		answer(&other, 1)
	}
	late := *net
	late.Name = "late" // past maxModelLabels names
	answer(&late, 2)
	answer(&late, 2)
	for _, c := range []struct {
		what string
		got  prometheus.Counter
		want float64
	}{
		{"images_classified_total{label=" + net.Labels[3] + "}", m.classified.WithLabelValues(net.Labels[3]), 3},
		{"images_classified_total{label=class-3}", m.classified.WithLabelValues("class-3"), 1},
		{"images_classified_total{label=" + net.Labels[2] + "}", m.classified.WithLabelValues(net.Labels[2]), 2},
		{"predictions_total{model=" + net.Name + ",outcome=accepted}", m.answers.WithLabelValues(net.Name, OutcomeAccepted), 4},
		{"predictions_total{model=" + net.Name + ",outcome=low_confidence}", m.answers.WithLabelValues(net.Name, OutcomeLowConfidence), 0},
		{"predictions_total{model=other,outcome=accepted}", m.answers.WithLabelValues("other", OutcomeAccepted), 2},
		{"predictions_total{model=late,outcome=accepted}", m.answers.WithLabelValues("late", OutcomeAccepted), 0},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v; want %v", c.what, got, c.want)
		}
	}
}
