package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

func TestMetricsFollowConventionsAndCountWhatHappens(t *testing.T) {
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	e := inference.New(inference.Config{Workers: 1, Observer: m}, net)
	defer e.Close()
	m.RegisterEngine(reg, e)
	h := NewServer(zap.NewNop(), Config{}, reg, m, e, nil, nil, nil)

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
# HELP perceptron_inference_batch_size Images per forward pass.
# TYPE perceptron_inference_batch_size histogram
perceptron_inference_batch_size_bucket{le="1"} 3
perceptron_inference_batch_size_bucket{le="2"} 3
perceptron_inference_batch_size_bucket{le="4"} 3
perceptron_inference_batch_size_bucket{le="8"} 3
perceptron_inference_batch_size_bucket{le="16"} 3
perceptron_inference_batch_size_bucket{le="32"} 3
perceptron_inference_batch_size_bucket{le="64"} 3
perceptron_inference_batch_size_bucket{le="128"} 3
perceptron_inference_batch_size_bucket{le="256"} 3
perceptron_inference_batch_size_bucket{le="+Inf"} 3
perceptron_inference_batch_size_sum 3
perceptron_inference_batch_size_count 3
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
