// Package mnisttest gives tests the real MNIST sets, fetched once per test binary through the Go module proxy and
// checksum-verified exactly as the server fetches them, and MNIST digits encoded as a client would upload them. Only
// tests import it.
package mnisttest

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"sync"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
)

var sets struct {
	once        sync.Once
	train, test *dataset.Set
	err         error
}

func load(t testing.TB) {
	t.Helper()
	sets.once.Do(func() {
		dir, err := dataset.FindMNIST(context.Background(), "")
		if err != nil {
			sets.err = err
			return
		}
		if sets.train, sets.err = dataset.LoadMNIST(dir, dataset.Train); sets.err != nil {
			return
		}
		sets.test, sets.err = dataset.LoadMNIST(dir, dataset.Test)
	})
	if sets.err != nil {
		t.Fatalf("loading MNIST: %v", sets.err)
	}
}

// Train returns MNIST's 60,000 training examples. The set is shared: do not modify it.
func Train(t testing.TB) *dataset.Set {
	load(t)
	return sets.train
}

// Test returns MNIST's 10,000 test examples. The set is shared: do not modify it.
func Test(t testing.TB) *dataset.Set {
	load(t)
	return sets.test
}

// PNG encodes test digit i as the 28x28 grayscale PNG a client would send, and returns its label.
func PNG(t testing.TB, i int) (data []byte, label int) {
	t.Helper()
	s := Test(t)
	g := image.NewGray(image.Rect(0, 0, s.Cols, s.Rows))
	copy(g.Pix, s.Image(i))
	var b bytes.Buffer
	if err := png.Encode(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), int(s.Y[i])
}
