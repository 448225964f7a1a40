package api

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Once its buffers are warm, the per-image path of /predict (reserving the decode memory, decoding a small PNG,
// preparing it into the batch) allocates nothing: a batch of 16 digits costs no garbage beyond multipart parsing.
func TestAddImageAllocatesNothingPerImage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	e := inference.New(inference.Config{}, net)
	t.Cleanup(e.Close)
	promReg := prometheus.NewRegistry()
	s := NewServer(zap.NewNop(), Config{Memory: membudget.New(1 << 30)}, promReg, NewMetrics(promReg), e, nil, nil, nil)
	// The metric is a native histogram, which allocates the first time a duration lands in a new bucket: that
	// depends on the clock, and is the metric's cost rather than the image's. A classic one stands in for it here.
	s.metrics.preprocess = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "preprocess_test"})
	in := net.Input
	b := &batchInput{size: in.Width * in.Height, x: make([]float32, 0, 16*in.Width*in.Height)}
	images := make([][]byte, 16)
	for i := range images {
		images[i], _ = digitPNG(t, i)
	}
	name := func() string { return "image" }
	ctx := context.Background()
	batch := func() {
		b.x, b.n, b.noDigit = b.x[:0], 0, nil
		for _, img := range images {
			if err := s.addImage(ctx, b, img, in, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	batch()
	// A collection empties the pools the Preparers and buffers come from; none may run while allocations are counted.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if n := testing.AllocsPerRun(50, batch); n > 0 {
		t.Fatalf("%v allocations per batch of 16 images, want 0", n)
	}
	if b.n != 16 {
		t.Fatalf("%d rows prepared, want 16", b.n)
	}
}
