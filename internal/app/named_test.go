package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"

	"github.com/perceptron-dev/perceptron/internal/api"
)

const testToken = "test-token-of-named-models"

func newTestService(t *testing.T, dir string, cfg Config) *Service {
	t.Helper()
	cfg.ModelDir, cfg.DataDir, cfg.Foreground = dir+"/models", dir+"/data", true
	cfg.API = api.Config{AdminToken: testToken}
	s, err := New(zap.NewNop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	return send(t, h, method, path, "", nil)
}

func send(t *testing.T, h http.Handler, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestActivatingAnotherModelLeavesTheServedOneServing stores a version of model "pets" next to the embedded
// mnist-mlp: activating it moves the pets pointer only, the server keeps serving mnist-mlp, and the named routes
// refuse a version of another model and an unknown name (listing the names there are).
func TestActivatingAnotherModelLeavesTheServedOneServing(t *testing.T) {
	s := newTestService(t, t.TempDir(), Config{})
	digits := s.Engine.Model()
	pets := digits.Clone()
	pets.Name, pets.Version, pets.Created = "pets", "pets-1", time.Now().UTC()
	if err := s.Registry.Put(pets); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	if code, body := do(t, h, "POST", "/models/mnist-mlp/versions/pets-1/activate"); code != http.StatusNotFound {
		t.Errorf("activating pets-1 as a version of mnist-mlp: %d %s; want 404", code, body)
	}
	if code, body := do(t, h, "POST", "/models/pets/versions/pets-1/activate"); code != http.StatusOK {
		t.Fatalf("activating pets-1: %d %s", code, body)
	}
	if got := s.Engine.Model().Version; got != digits.Version {
		t.Errorf("serving %s after activating pets; want mnist-mlp's %s", got, digits.Version)
	}
	code, body := do(t, h, "GET", "/models/pets/versions")
	var list struct{ Name, Active string }
	json.Unmarshal([]byte(body), &list)
	if code != http.StatusOK || list.Name != "pets" || list.Active != "pets-1" {
		t.Errorf("GET /models/pets/versions: %d %s; want pets-1 active", code, body)
	}
	code, body = do(t, h, "GET", "/models/mnist-mlp/versions")
	json.Unmarshal([]byte(body), &list)
	if code != http.StatusOK || list.Active != digits.Version {
		t.Errorf("GET /models/mnist-mlp/versions: %d %s; want the embedded %s active", code, body, digits.Version)
	}
	if code, body := do(t, h, "GET", "/models/cats/versions"); code != http.StatusNotFound || !strings.Contains(body, "mnist-mlp, pets") {
		t.Errorf("GET /models/cats/versions: %d %s; want 404 listing mnist-mlp, pets", code, body)
	}

	// A process whose DEFAULT_MODEL is pets serves pets' active version from the same folder.
	other, err := New(zap.NewNop(), Config{ModelDir: s.cfg.ModelDir, DataDir: s.cfg.DataDir, DefaultModel: "pets", Foreground: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := other.Engine.Model(); got.Name != "pets" || got.Version != "pets-1" {
		t.Errorf("DEFAULT_MODEL=pets serves %s %s; want pets pets-1", got.Name, got.Version)
	}
	if _, err := New(zap.NewNop(), Config{ModelDir: s.cfg.ModelDir, DataDir: s.cfg.DataDir, DefaultModel: "cats"}); err == nil {
		t.Error("DEFAULT_MODEL=cats, a name with no version, was accepted")
	}
}

// TestTwoModelsAnswerSideBySide serves the embedded mnist-mlp and a model "pets" (the same weights under other
// labels, so which one answered shows in the labels) from one server: /predict?model=, /v2/models/{name} and the
// version route each answer with the model named, and unknown names are 404s that list the names there are.
func TestTwoModelsAnswerSideBySide(t *testing.T) {
	s := newTestService(t, t.TempDir(), Config{})
	digits := s.Engine.Model()
	pets := digits.Clone()
	pets.Name, pets.Version, pets.Created = "pets", "pets-1", time.Now().UTC()
	for i := range pets.Labels {
		pets.Labels[i] = "pet" + pets.Labels[i]
	}
	if err := s.Registry.Put(pets); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	if code, body := do(t, h, "POST", "/models/pets/versions/pets-1/activate"); code != http.StatusOK {
		t.Fatalf("activating pets-1: %d %s", code, body)
	}
	img, want := mnisttest.PNG(t, 3)
	for _, c := range []struct{ path, name, label string }{
		{"/predict", "mnist-mlp", strconv.Itoa(want)},
		{"/predict?model=pets", "pets", "pet" + strconv.Itoa(want)},
		{"/predict?model=mnist-mlp", "mnist-mlp", strconv.Itoa(want)},
	} {
		code, body := send(t, h, "POST", c.path, "image/png", img)
		var out struct {
			Model       struct{ Name, Version string }
			Predictions []struct{ Label string }
		}
		json.Unmarshal([]byte(body), &out)
		if code != http.StatusOK || out.Model.Name != c.name || len(out.Predictions) != 1 || out.Predictions[0].Label != c.label {
			t.Errorf("POST %s: %d %s; want %s answering %s", c.path, code, body, c.name, c.label)
		}
	}
	tensor := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[` + strings.Repeat("0,", 783) + `0]}]}`
	for _, c := range []struct{ path, name, version string }{
		{"/v2/models/pets/infer", "pets", "pets-1"},
		{"/v2/models/pets/versions/pets-1/infer", "pets", "pets-1"},
		{"/v2/models/mnist-mlp/infer", "mnist-mlp", digits.Version},
	} {
		code, body := send(t, h, "POST", c.path, "application/json", []byte(tensor))
		var out struct {
			Name    string `json:"model_name"`
			Version string `json:"model_version"`
		}
		json.Unmarshal([]byte(body), &out)
		if code != http.StatusOK || out.Name != c.name || out.Version != c.version {
			t.Errorf("POST %s: %d %s; want %s %s", c.path, code, body, c.name, c.version)
		}
	}
	for _, path := range []string{"/v2/models/cats/infer", "/v2/models/pets/versions/" + digits.Version + "/infer"} {
		code, body := send(t, h, "POST", path, "application/json", []byte(tensor))
		if code != http.StatusNotFound || !strings.Contains(body, "mnist-mlp, pets") {
			t.Errorf("POST %s: %d %s; want 404 listing mnist-mlp, pets", path, code, body)
		}
	}
	// gRPC ModelInfer by name and version, through the same cache.
	for _, c := range []struct{ name, version string }{{"pets", ""}, {"pets", "pets-1"}, {"mnist-mlp", ""}} {
		res, err := s.GRPC.ModelInfer(context.Background(), &oippb.ModelInferRequest{ModelName: c.name, ModelVersion: c.version,
			Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 784},
				Contents: &oippb.InferTensorContents{Fp32Contents: make([]float32, 784)}}}})
		if err != nil || res.ModelName != c.name {
			t.Errorf("gRPC ModelInfer(%s %s) = %v, %v; want %s answering", c.name, c.version, res, err, c.name)
		}
	}
	if _, err := s.GRPC.ModelInfer(context.Background(), &oippb.ModelInferRequest{ModelName: "cats"}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "mnist-mlp, pets") {
		t.Errorf("gRPC ModelInfer(cats) = %v; want NotFound listing mnist-mlp, pets", err)
	}
	// The batch-size histogram has one series per model that answered.
	families, err := s.Prometheus.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() == "perceptron_inference_batch_size" {
			for _, m := range f.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if len(counts) != 2 || counts["pets"] < 5 || counts["mnist-mlp"] < 4 {
		t.Errorf("batch-size series by model %v; want mnist-mlp and pets, each counting its batches", counts)
	}
	if code, body := send(t, h, "POST", "/predict?model=cats", "image/png", img); code != http.StatusNotFound || !strings.Contains(body, "mnist-mlp, pets") {
		t.Errorf("POST /predict?model=cats: %d %s; want 404 listing mnist-mlp, pets", code, body)
	}
}
