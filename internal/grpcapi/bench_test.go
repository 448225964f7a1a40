package grpcapi

import (
	"context"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/inference"
)

// BenchmarkModelInfer is one digit per call over an in-memory connection, client and server in this process, with
// the input as raw contents and as typed contents.
func BenchmarkModelInfer(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "typed"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			k := newKit(b, Config{}, inference.Config{})
			req := fp32Request(k.net.Name, make([]float32, 784), 1, raw)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := k.client.ModelInfer(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
