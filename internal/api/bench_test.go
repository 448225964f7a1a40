package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// BenchmarkPredict measures the handler in-process (no network): multipart parsing, decoding, preprocessing,
// queueing, inference and encoding, for 1 and 16 PNG digits per request.
func BenchmarkPredict(b *testing.B) {
	net, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	e := inference.New(inference.Config{}, net)
	defer e.Close()
	promReg := prometheus.NewRegistry()
	h := NewServer(zap.NewNop(), Config{BenchFloor: true}, promReg, NewMetrics(promReg), e, nil, nil, nil)
	img, _ := digitPNG(b, 0)
	for _, n := range []int{1, 16} {
		imgs := make([][]byte, n)
		for i := range imgs {
			imgs[i] = img
		}
		body, ct := multipartBody(b, map[string][][]byte{"image": imgs})
		for _, path := range []string{"/predict", "/bench/floor"} {
			b.Run(path[1:]+"/images="+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
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
