package api_test

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/app"
	"github.com/perceptron-dev/perceptron/internal/inference"
)

// The tests of package api that run a whole service build it with the binary's constructor.
func init() {
	api.BuildService = func(t testing.TB, cfg api.Config) api.TestService {
		t.Helper()
		svc, err := app.New(zap.NewNop(), app.Config{ModelDir: t.TempDir(), DataDir: t.TempDir(),
			Engine: inference.Config{Workers: 2}, API: cfg, TrainNormalPriority: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		svc.Start(ctx)
		t.Cleanup(func() { cancel(); svc.Close() })
		return api.TestService{Handler: svc.Handler(), HTTP: svc.HTTP, Engine: svc.Engine, Metrics: svc.Metrics}
	}
}
