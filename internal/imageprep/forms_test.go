package imageprep

import (
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
)

// mnistTest returns MNIST's real test set; the test images are made from its digits in each of the ways a digit
// reaches the service (package uploadtest).
func mnistTest(t testing.TB) *dataset.Set { return mnisttest.Test(t) }
