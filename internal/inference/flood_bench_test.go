package inference

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// BenchmarkNeighbourOfAFloodedModel measures one client's latency on model B alone, then while 16 clients flood
// model A with 8-image requests, on the embedded network (two copies under two names): the p99 of B's single-image
// requests in each phase (and their means), and the ratio of the p99s. A figure for the README, not a test: it depends on the machine.
//
// Alone, B's client finds the engine idle and computes on its own goroutine, which a flooded engine never allows,
// so that baseline (p99-direct-µs) flatters the comparison. The fair baseline (p99-alone-µs) goes through the queue
// and the workers as the flooded case does: the engine gets one slot more than it has workers to use and the
// benchmark holds that slot in both phases, so the engine is never idle and GOMAXPROCS slots compute. The ratio is
// flooded to that baseline.
//
//	go test -run '^$' -bench NeighbourOfAFlooded -benchtime 2000x ./internal/inference/
func BenchmarkNeighbourOfAFloodedModel(b *testing.B) {
	def, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	a, nb := def.Clone(), def.Clone()
	a.Name, nb.Name = "a", "b"
	e := New(Config{Workers: runtime.GOMAXPROCS(0) + 1}, a)
	defer e.Close()
	x1 := make([]float32, 784)
	x8 := make([]float32, 8*784)
	// p99 returns the 99th percentile and the mean of b.N requests' latencies.
	p99 := func() (time.Duration, time.Duration) {
		lat := make([]time.Duration, b.N)
		for i := range b.N {
			start := time.Now()
			if _, err := e.PredictOn(context.Background(), nb, x1, 1, 784); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		return lat[len(lat)*99/100], sum / time.Duration(len(lat))
	}
	b.ResetTimer()
	directBefore := e.Stats().Direct
	idle, _ := p99()
	if e.Stats().Direct == directBefore {
		b.Fatal("no request computed on its caller's goroutine on an idle engine")
	}
	held := <-e.slots
	directBefore = e.Stats().Direct
	alone, aloneMean := p99()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var floods atomic.Int64
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := e.PredictOn(ctx, a, x8, 8, 784); err != nil && ctx.Err() == nil {
					b.Error(err)
				}
				floods.Add(1)
			}
		})
	}
	flooded, floodedMean := p99()
	cancel()
	wg.Wait()
	if e.Stats().Direct != directBefore {
		b.Fatal("a request computed on its caller's goroutine while a slot was held")
	}
	e.slots <- held
	b.ReportMetric(float64(idle.Microseconds()), "p99-direct-µs")
	b.ReportMetric(float64(alone.Microseconds()), "p99-alone-µs")
	b.ReportMetric(float64(flooded.Microseconds()), "p99-flooded-µs")
	b.ReportMetric(float64(flooded)/float64(alone), "ratio")
	b.ReportMetric(float64(aloneMean.Microseconds()), "mean-alone-µs")
	b.ReportMetric(float64(floodedMean.Microseconds()), "mean-flooded-µs")
	b.ReportMetric(float64(floods.Load())/float64(b.N), "flood-requests/op")
}
