package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/registry/registrytest"
)

// TestALostActivationRaceIsAConflictAndTheBucketsErrorIsInReadyz: two replicas share a bucket; another replica's
// activation lands between this one's read of the pointer and its write, so this one answers 409 and keeps
// serving; with the bucket down, /readyz stays 200 and names the error.
func TestALostActivationRaceIsAConflictAndTheBucketsErrorIsInReadyz(t *testing.T) {
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	store := &registrytest.MemStore{}
	open := func() *registry.Registry {
		r, err := registry.OpenStore("s3://bucket/prefix", store, embedded, registry.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	reg, other := open(), open()
	for _, v := range []string{"v1", "v2"} {
		n := embedded.Clone()
		n.Version, n.Created = v, time.Now().UTC()
		if err := reg.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	raced := false
	store.BeforePut = func(key string) {
		if key == "ACTIVE" && !raced {
			raced = true
			if _, err := other.Activate("v2"); err != nil {
				t.Errorf("the other replica's activation: %v", err)
			}
		}
	}
	promReg := prometheus.NewRegistry()
	e := inference.New(inference.Config{Workers: 1}, embedded)
	defer e.Close()
	goLive := func(v string) (*model.Network, error) {
		n, err := reg.Activate(v)
		if err == nil {
			e.Swap(n)
		}
		return n, err
	}
	srv := httptest.NewServer(NewServer(zap.NewNop(), Config{AdminToken: testToken, GoLive: goLive}, promReg, NewMetrics(promReg), e, reg, nil, nil))
	defer srv.Close()

	resp, body := apitest.Do(t, "POST", srv.URL+"/models/v1/activate", testToken, "")
	if resp.StatusCode != http.StatusConflict || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") ||
		!strings.Contains(string(body), "another replica") {
		t.Errorf("the losing activation: %d %s; want a 409 problem saying another replica won", resp.StatusCode, body)
	}
	if got := e.Model().Version; got != embedded.Version {
		t.Errorf("serving %s after the lost race; want %s unchanged", got, embedded.Version)
	}

	store.SetDown(true)
	if err := reg.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh with the bucket down: no error")
	}
	resp, body = apitest.Do(t, "GET", srv.URL+"/readyz", "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"registry"`) || !strings.Contains(string(body), "down") {
		t.Errorf("/readyz with the bucket down: %d %s; want 200 naming the store's error", resp.StatusCode, body)
	}
	store.SetDown(false)
	if err := reg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, body = apitest.Do(t, "GET", srv.URL+"/readyz", "", ""); strings.Contains(string(body), `"registry"`) {
		t.Errorf("/readyz with the bucket back: %d %s; want no registry error", resp.StatusCode, body)
	}
}
