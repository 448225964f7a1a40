package api

import (
	"net/http"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/inference"
)

// TestService is the whole service, built as the binary builds it, with the parts a test may look into.
type TestService struct {
	Handler http.Handler
	HTTP    *Server
	Engine  *inference.Engine
	Metrics *Metrics
}

// BuildService builds the whole service over temporary folders with the composition root's constructor
// (internal/app), serving the embedded default model. The composition root imports this package, so a test of this
// package cannot import it: service_test.go, an external test file of the same test binary, sets this at init.
var BuildService func(t testing.TB, cfg Config) TestService

// serviceForTest builds the whole service for a test through BuildService.
func serviceForTest(t testing.TB, cfg Config) TestService {
	t.Helper()
	if BuildService == nil {
		t.Fatal("BuildService is not set: service_test.go must be in the test binary")
	}
	return BuildService(t, cfg)
}
