package train

import "testing"

// Each range brackets the peak resident memory such a job reaches on MNIST (L-BFGS [2048,2048] about 2.5 GB, Adam
// [4096,4096,4096] with batch 8192 about 1.9 GB), so an estimate that drifts far from the truth fails; the default
// job fits in a small pod.
func TestMemoryEstimate(t *testing.T) {
	req := func(opt string, batch int, hidden ...int) Request {
		r := DefaultRequest()
		r.Optimizer, r.BatchSize, r.Hidden = opt, batch, hidden
		return r
	}
	for _, c := range []struct {
		name     string
		r        Request
		min, max int64
	}{
		{"lbfgs 2048x2048", req("lbfgs", 64, 2048, 2048), 2e9, 3e9},
		{"adam 3x4096 batch 8192", req("adam", 8192, 4096, 4096, 4096), 1.6e9, 2.6e9},
		{"default", DefaultRequest(), 1, 200e6},
		{"lbfgs 4x4096", req("lbfgs", 64, 4096, 4096, 4096, 4096), 15e9, 30e9},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.r.MemoryEstimate(60000, 784, 10); got < c.min || got > c.max {
				t.Fatalf("estimate %d bytes; want %d..%d", got, c.min, c.max)
			}
		})
	}
}
