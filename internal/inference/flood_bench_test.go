package inference

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// BenchmarkNeighbourOfAFloodedModel measures one client's latency on model B alone, then while 16 clients flood
// model A with 8-image requests, on the embedded 784-256-128-10 network (two copies under two names): the p99 of
// B's single-image requests in both phases, and their ratio. A figure for the README, not a test: it depends on
// the machine.
//
//	go test -run '^$' -bench NeighbourOfAFlooded -benchtime 2000x ./internal/inference/
func BenchmarkNeighbourOfAFloodedModel(b *testing.B) {
	def, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	a, nb := def.Clone(), def.Clone()
	a.Name, nb.Name = "a", "b"
	e := New(Config{}, a)
	defer e.Close()
	x1 := make([]float32, 784)
	x8 := make([]float32, 8*784)
	p99 := func() time.Duration {
		lat := make([]time.Duration, b.N)
		for i := range b.N {
			start := time.Now()
			if _, err := e.PredictOn(context.Background(), nb, x1, 1, 784); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	b.ResetTimer()
	alone := p99()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				e.PredictOn(ctx, a, x8, 8, 784)
			}
		})
	}
	flooded := p99()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(alone.Microseconds()), "p99-alone-µs")
	b.ReportMetric(float64(flooded.Microseconds()), "p99-flooded-µs")
	b.ReportMetric(float64(flooded)/float64(alone), "ratio")
}
