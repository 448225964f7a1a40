package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// BenchmarkPredict measures the handler in-process (no network): multipart parsing, decoding, preprocessing,
// queueing, inference and encoding, for 1 and 16 PNG digits per request.
//
// bare/images=N is /bench/floor's handler alone on a bare chi router, without the service's middleware (request id,
// access log, metrics, recovery, draining): bench/floor's cost above it is the middleware's share.
func BenchmarkPredict(b *testing.B) {
	s := benchServer(b, Config{BenchFloor: true})
	bare := chi.NewRouter()
	bare.Post("/bench/floor", s.handleFloor())
	img, _ := digitPNG(b, 0)
	for _, n := range []int{1, 16} {
		imgs := make([][]byte, n)
		for i := range imgs {
			imgs[i] = img
		}
		body, ct := multipartBody(b, map[string][][]byte{"image": imgs})
		for _, path := range []string{"/predict", "/bench/floor", "bare"} {
			h, target := http.Handler(s), path
			if path == "bare" {
				h, target = bare, "/bench/floor"
			}
			b.Run(strings.TrimPrefix(path, "/")+"/images="+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
						req.Header.Set("Content-Type", ct)
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code != http.StatusOK {
							b.Fatalf("status %d: %s", w.Code, w.Body)
						}
					}
				})
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}

// BenchmarkPredictJSON measures the numeric JSON forms in-process: /predict with "inputs" rows and the Open Inference
// Protocol's FP32 tensor, for 1 and 16 rows of 784 values as a client's float formatting writes them.
func BenchmarkPredictJSON(b *testing.B) {
	h := benchHandler(b, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 16} {
		rows := make([][]float32, n)
		for i := range rows {
			rows[i] = make([]float32, 784)
			for j := range rows[i] {
				if rng.IntN(5) == 0 { // a digit is mostly background
					rows[i][j] = rng.Float32()
				}
			}
		}
		predict, _ := json.Marshal(map[string]any{"inputs": rows})
		v2, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "input", "shape": []int{n, 784}, "datatype": "FP32", "data": rows}}})
		for _, c := range []struct {
			name, path string
			body       []byte
		}{{"predict", "/predict", predict}, {"v2", "/v2/models/mnist-mlp/infer", v2}} {
			b.Run(c.name+"/rows="+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.body)))
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(c.body))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}

// benchHandler is the API, without admin routes, serving the embedded default model on a default engine that the
// benchmark's end closes.
func benchHandler(b *testing.B, cfg Config) http.Handler { return benchServer(b, cfg) }

// benchServer is benchHandler as the *Server it is.
func benchServer(b *testing.B, cfg Config) *Server {
	if cfg.Memory == nil {
		cfg.Memory = membudget.New(1 << 30) // the service always has a budget (see app.New)
	}
	net, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	e := inference.New(inference.Config{}, net)
	b.Cleanup(e.Close)
	promReg := prometheus.NewRegistry()
	return NewServer(zap.NewNop(), cfg, promReg, NewMetrics(promReg), e, nil, nil, nil)
}

// BenchmarkCountAnswers measures the metrics one answered image costs on /predict: its outcome and its label.
func BenchmarkCountAnswers(b *testing.B) {
	net, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	probs := make([]float32, len(net.Labels))
	probs[7] = 1
	res := inference.Result{Probs: probs, Model: net}
	b.ReportAllocs()
	for b.Loop() {
		m.countAnswers(res, nil, 0.5)
	}
}

// BenchmarkPredictResponse measures writing the answer of /predict for 1 and 16 digits, with probabilities as a
// confident classifier's softmax gives them (one near 1, the others spread over many powers of ten).
func BenchmarkPredictResponse(b *testing.B) {
	net, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	classes := len(net.Labels)
	rng := rand.New(rand.NewPCG(3, 4))
	var c labelCache
	q := c.quoted(net)
	for _, n := range []int{1, 16} {
		probs := make([]float32, n*classes)
		for i := range n {
			row := probs[i*classes : (i+1)*classes]
			sum := 0.0
			for j := range row {
				row[j] = float32(math.Exp(-rng.Float64() * 30))
				sum += float64(row[j])
			}
			row[rng.IntN(classes)] = 1
			for j := range row {
				row[j] = float32(float64(row[j]) / (sum + 1))
			}
		}
		res := inference.Result{Probs: probs, Model: net}
		b.Run("images="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = appendPredictResponse(buf[:0], q, res, nil, 0.5, 3, nil, 0)
			}
		})
	}
}
