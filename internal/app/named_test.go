package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

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
	req := httptest.NewRequest(method, path, nil)
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
