package imageprep

import (
	"context"
	"sync"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
)

// The test images are made from real MNIST test digits, in each of the ways a digit reaches the service (package
// uploadforms).

var (
	mnistOnce sync.Once
	mnistSet  *dataset.Set
	mnistErr  error
)

// mnistTest returns MNIST's test set, fetched through the Go module proxy the first time (see dataset.FindMNIST).
func mnistTest(t testing.TB) *dataset.Set {
	t.Helper()
	mnistOnce.Do(func() {
		var dir string
		dir, mnistErr = dataset.FindMNIST(context.Background(), "")
		if mnistErr == nil {
			mnistSet, mnistErr = dataset.LoadMNIST(dir, dataset.Test)
		}
	})
	if mnistErr != nil {
		t.Fatalf("loading MNIST: %v", mnistErr)
	}
	return mnistSet
}
