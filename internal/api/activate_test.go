package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// TestActivatingADamagedVersionIsRefusedAndChangesNothing activates a version whose file was truncated after it
// was stored: the answer is a 422 that says so, the served model stays, and the listing agrees with what serves.
func TestActivatingADamagedVersionIsRefusedAndChangesNothing(t *testing.T) {
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg, err := registry.Open(dir, embedded)
	if err != nil {
		t.Fatal(err)
	}
	damaged := embedded.Clone()
	damaged.Version, damaged.Created = "damaged-1", time.Now().UTC()
	if err := reg.Put(damaged); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "versions", "damaged-1.pcpt"), 1000); err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	m := NewMetrics(promReg)
	e := inference.New(inference.Config{Workers: 1}, embedded)
	defer e.Close()
	goLive := func(v string) (*model.Network, error) {
		n, err := reg.Activate(v)
		if err == nil {
			e.Swap(n)
		}
		return n, err
	}
	srv := httptest.NewServer(NewServer(zap.NewNop(), Config{AdminToken: testToken, GoLive: goLive}, promReg, m, e, reg, nil, nil))
	defer srv.Close()

	resp, body := apitest.Do(t, "POST", srv.URL+"/models/damaged-1/activate", testToken, "")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "does not load") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("activating a damaged version: %d %s; want a 422 problem saying it does not load", resp.StatusCode, body)
	}
	if strings.Contains(string(body), dir) {
		t.Errorf("the answer names the server's folder: %s", body)
	}
	if got := e.Model().Version; got != embedded.Version {
		t.Errorf("serving %s after the refused activation; want %s unchanged", got, embedded.Version)
	}
	resp, body = apitest.Do(t, "GET", srv.URL+"/models", testToken, "")
	var list struct {
		Serving string
		Models  []registry.Entry
	}
	json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || list.Serving != embedded.Version || len(list.Models) != 1 || !list.Models[0].Active {
		t.Errorf("GET /models after the refused activation: %d %s; want the default serving, listed and active", resp.StatusCode, body)
	}
}

// TestCancelTooLateIsAConflict: a cancel that comes after the job's point of no return is a 409 that says so.
func TestCancelTooLateIsAConflict(t *testing.T) {
	var e *Error
	if err := asError(train.ErrTooLate); !errors.As(err, &e) || e.Kind != KindConflict || !strings.Contains(e.Detail, "too late") {
		t.Errorf("asError(ErrTooLate) = %v; want a conflict saying it is too late", err)
	}
}
