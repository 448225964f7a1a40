package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
)

func testDigits(t testing.TB) *dataset.Set { return mnisttest.Test(t) }

// digitPNG encodes MNIST test digit i as a 28x28 PNG, as a client would send it.
func digitPNG(t testing.TB, i int) ([]byte, int) { return mnisttest.PNG(t, i) }

const testToken = "test-admin-token"

// newTestServer starts the whole API over a temporary registry, serving the embedded default model.
func newTestServer(t testing.TB, cfg Config) (*httptest.Server, *inference.Engine) {
	t.Helper()
	ts := newTestStack(t, cfg)
	return ts.srv, ts.engine
}

// testStack is the whole API with the parts a test may look into.
type testStack struct {
	srv     *httptest.Server
	engine  *inference.Engine
	server  *Server
	metrics *Metrics
}

func newTestStack(t testing.TB, cfg Config) testStack {
	t.Helper()
	if cfg.AdminToken == "" {
		cfg.AdminToken = testToken
	}
	if cfg.PredictTimeout == 0 {
		// The 10 s default is for production; a test under -race on a busy machine can take longer for a large
		// upload, and a test that wants a timeout sets its own.
		cfg.PredictTimeout = 10 * time.Minute
	}
	svc := serviceForTest(t, cfg)
	srv := httptest.NewServer(svc.Handler)
	t.Cleanup(srv.Close)
	return testStack{srv: srv, engine: svc.Engine, server: svc.HTTP, metrics: svc.Metrics}
}

type prediction struct {
	Label         string             `json:"label"` // "" when null (no digit found)
	Index         int                `json:"index"`
	Accepted      bool               `json:"accepted"`
	Reason        string             `json:"reason"`
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
	Top           []struct {
		Label       string  `json:"label"`
		Probability float64 `json:"probability"`
	} `json:"top"`
	Input []float64 `json:"input"`
}

type predictResponse struct {
	Model         struct{ Name, Version string } `json:"model"`
	MinConfidence float64                        `json:"min_confidence"`
	Predictions   []prediction                   `json:"predictions"`
}

func post(t *testing.T, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func decodePredictions(t *testing.T, resp *http.Response, body []byte) predictResponse {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out predictResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	for i, p := range out.Predictions {
		if p.Reason == "no_digit_found" {
			if p.Label != "" || p.Index != 0 || p.Accepted || p.Probabilities != nil || p.Top != nil {
				t.Errorf("prediction %d: no digit found, yet label %v, index %v, accepted %v, probabilities %v, top %v",
					i, p.Label, p.Index, p.Accepted, p.Probabilities, p.Top)
			}
			continue
		}
		if p.Label == "" {
			t.Fatalf("prediction %d: no label, reason %q", i, p.Reason)
		}
		// not_a_digit does not depend on the threshold; otherwise the confidence decides.
		if p.Reason == "not_a_digit" {
			if p.Accepted {
				t.Errorf("prediction %d: not a digit, yet accepted", i)
			}
		} else if wantAccepted := p.Confidence >= out.MinConfidence; p.Accepted != wantAccepted ||
			(p.Accepted && p.Reason != "") || (!p.Accepted && p.Reason != "low_confidence") {
			t.Errorf("prediction %d: confidence %v at min_confidence %v: accepted %v, reason %q", i, p.Confidence, out.MinConfidence, p.Accepted, p.Reason)
		}
		var sum float64
		for _, v := range p.Probabilities {
			sum += v
		}
		if len(p.Probabilities) != 10 || math.Abs(sum-1) > 1e-4 {
			t.Errorf("prediction %d: %d probabilities summing to %v; want 10 summing to 1", i, len(p.Probabilities), sum)
		}
		if p.Label != fmt.Sprint(p.Index) || p.Confidence != p.Probabilities[p.Label] {
			t.Errorf("prediction %d: label %q index %d confidence %v disagree with probabilities", i, p.Label, p.Index, p.Confidence)
		}
		for j := 1; j < len(p.Top); j++ {
			if p.Top[j].Probability > p.Top[j-1].Probability {
				t.Errorf("prediction %d: top is not sorted: %+v", i, p.Top)
			}
		}
		if len(p.Top) == 0 || p.Top[0].Label != p.Label {
			t.Errorf("prediction %d: top %+v does not start with the label %q", i, p.Top, p.Label)
		}
	}
	return out
}

func multipartBody(t testing.TB, parts map[string][][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, datas := range parts {
		for i, d := range datas {
			w, err := mw.CreateFormFile(name, fmt.Sprintf("%s%d.png", name, i))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(d)
		}
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func TestPredictAcceptsEveryInputForm(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	imgs := make([][]byte, 5)
	labels := make([]int, 5)
	for i := range imgs {
		imgs[i], labels[i] = digitPNG(t, i)
	}
	s := testDigits(t)
	rows := make([][]float64, 5)
	for i := range rows {
		rows[i] = make([]float64, 784)
		for j, p := range s.Image(i) {
			rows[i][j] = float64(p) / 255
		}
	}
	b64 := make([]string, 5)
	for i, img := range imgs {
		b64[i] = base64.StdEncoding.EncodeToString(img)
	}
	b64[1] = "data:image/png;base64," + b64[1] // as a canvas's toDataURL gives it
	jsonImages, _ := json.Marshal(map[string]any{"images": b64})
	jsonInputs, _ := json.Marshal(map[string]any{"inputs": rows})
	mp, mpType := multipartBody(t, map[string][][]byte{"image": imgs})

	for _, tt := range []struct {
		name, contentType string
		body              []byte
		n                 int
	}{
		{"raw PNG", "image/png", imgs[0], 1},
		{"multipart batch", mpType, mp, 5},
		{"JSON base64 images", "application/json", jsonImages, 5},
		{"JSON inputs", "application/json; charset=utf-8", jsonInputs, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv.URL+"/predict?top_k=2", tt.contentType, tt.body)
			out := decodePredictions(t, resp, body)
			if len(out.Predictions) != tt.n {
				t.Fatalf("%d predictions; want %d", len(out.Predictions), tt.n)
			}
			for i, p := range out.Predictions {
				if p.Index != labels[i] {
					t.Errorf("prediction %d is %d; want %d (request order must be kept)", i, p.Index, labels[i])
				}
				if len(p.Top) != 2 {
					t.Errorf("top_k=2 gave %d entries", len(p.Top))
				}
			}
			if out.Model.Name != "mnist-mlp" || out.Model.Version == "" {
				t.Errorf("model %+v; want mnist-mlp with a version", out.Model)
			}
		})
	}
}

func TestPredictDebugReturnsTheInputTheModelSaw(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	img, _ := digitPNG(t, 3)
	resp, body := post(t, srv.URL+"/predict?debug=true", "image/png", img)
	out := decodePredictions(t, resp, body)
	if in := out.Predictions[0].Input; len(in) != 784 {
		t.Fatalf("debug input has %d values; want 784", len(in))
	}
}

func TestPredictErrors(t *testing.T) {
	srv, _ := newTestServer(t, Config{MaxBodyBytes: 64 << 10, MaxImages: 4, MaxPixels: 1 << 20})
	img, _ := digitPNG(t, 0)
	tooMany, tooManyType := multipartBody(t, map[string][][]byte{"image": {img, img, img, img, img}})
	empty, emptyType := multipartBody(t, map[string][][]byte{"image": {{}}})
	noImage, noImageType := multipartBody(t, map[string][][]byte{"photo": {img}})
	var hugePNG bytes.Buffer
	png.Encode(&hugePNG, image.NewGray(image.Rect(0, 0, 2000, 2000))) // 4 Mpx > MaxPixels, small file

	for _, tt := range []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
	}{
		{"no Content-Type", "POST", "/predict", "", img, 415},
		{"plain text", "POST", "/predict", "text/plain", []byte("seven"), 415},
		{"malformed Content-Type", "POST", "/predict", "image/png; ===", img, 400},
		{"garbage as PNG", "POST", "/predict", "image/png", []byte("definitely not a png file"), 422},
		{"truncated PNG", "POST", "/predict", "image/png", img[:len(img)/2], 422},
		{"empty body", "POST", "/predict", "image/png", nil, 422},
		{"body over the limit", "POST", "/predict", "image/png", make([]byte, 100<<10), 413},
		{"more pixels than allowed", "POST", "/predict", "image/png", hugePNG.Bytes(), 413},
		{"too many images", "POST", "/predict", tooManyType, tooMany, 413},
		{"empty part", "POST", "/predict", emptyType, empty, 422},
		{"no part named image", "POST", "/predict", noImageType, noImage, 400},
		{"multipart without boundary", "POST", "/predict", "multipart/form-data", img, 400},
		{"broken multipart", "POST", "/predict", "multipart/form-data; boundary=xyz", []byte("--xyz\r\nnonsense"), 400},
		{"malformed JSON", "POST", "/predict", "application/json", []byte(`{"images": [`), 400},
		{"unknown JSON field", "POST", "/predict", "application/json", []byte(`{"pictures": []}`), 400},
		{"both images and inputs", "POST", "/predict", "application/json", []byte(`{"images": [], "inputs": []}`), 400},
		{"empty JSON", "POST", "/predict", "application/json", []byte(`{}`), 400},
		{"bad base64", "POST", "/predict", "application/json", []byte(`{"images": ["***"]}`), 400},
		{"short input row", "POST", "/predict", "application/json", []byte(`{"inputs": [[0.5, 0.5]]}`), 422},
		{"input out of range", "POST", "/predict", "application/json", []byte(`{"inputs": [[` + strings.Repeat("2,", 783) + `2]]}`), 422},
		{"NaN literal", "POST", "/predict", "application/json", []byte(`{"inputs": [[NaN]]}`), 400},
		{"huge number", "POST", "/predict", "application/json", []byte(`{"inputs": [[1e999]]}`), 400},
		{"trailing JSON", "POST", "/predict", "application/json", []byte(`{"inputs": []} {}`), 400},
		{"top_k zero", "POST", "/predict?top_k=0", "image/png", img, 400},
		{"top_k not a number", "POST", "/predict?top_k=three", "image/png", img, 400},
		{"GET on predict", "GET", "/predict", "", nil, 405},
		{"an icon", "POST", "/predict", "image/png", []byte("\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00"), 415},
		{"unknown route", "GET", "/nope", "", nil, 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p Problem
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("body is not a problem: %v", err)
			}
			if resp.StatusCode != tt.status || p.Status != tt.status || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Errorf("got %d %+v; want %d with type, title and detail", resp.StatusCode, p, tt.status)
			}
		})
	}
}

func TestRequestIDIsPropagated(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id %q; want the client's abc-123", got)
	}
	req.Header.Set("X-Request-Id", "bad id with spaces")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("X-Request-Id %q; want a generated plain id", got)
	}
}

func TestOverloadAnswers503WithRetryAfter(t *testing.T) {
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	// A queue of one image and a worker pool that is never free make every second request overflow.
	e := inference.New(inference.Config{Workers: 1, QueueSize: 1, MaxBatch: 1}, net)
	defer e.Close()
	srv := httptest.NewServer(NewServer(zap.NewNop(), Config{}, prometheus.NewRegistry(), NewMetrics(prometheus.NewRegistry()), e, nil, nil, nil))
	defer srv.Close()
	img, _ := digitPNG(t, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 64 {
		wg.Go(func() {
			resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(img))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	wg.Wait()
	if statuses[200] == 0 || statuses[200]+statuses[503] != 64 {
		t.Errorf("statuses %v; want only 200s and 503s, some of each likely", statuses)
	}
}
