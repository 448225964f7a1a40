package train

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkTrainEpoch times one epoch of Adam over the 60,000 MNIST training images at batch 64, for the default
// model's architecture and the default training request's, so the figure compares directly with
// bench/pytorch/train_mnist.py.
func BenchmarkTrainEpoch(b *testing.B) {
	trainSet, _ := loadMNIST(b)
	for _, hidden := range [][]int{{128, 64}, {256, 128}} {
		parts := make([]string, len(hidden))
		for i, h := range hidden {
			parts[i] = strconv.Itoa(h)
		}
		b.Run("hidden="+strings.Join(parts, "-"), func(b *testing.B) {
			req := DefaultRequest()
			req.Hidden = hidden
			req.Epochs = 1
			req.ValidationSplit = 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Train(context.Background(), req, trainSet, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/epoch")
		})
	}
}
