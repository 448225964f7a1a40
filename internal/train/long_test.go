package train

import (
	"context"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestEmbeddedDefaultModelAccuracy checks the model the server ships against the 10,000 real MNIST test images.
func TestEmbeddedDefaultModelAccuracy(t *testing.T) {
	_, testSet := loadMNIST(t)
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(net, testSet)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded model %s (%v): test accuracy %.4f on %d images", net.Version, net.Layers, ev.Accuracy, testSet.Len())
	if ev.Accuracy < 0.98 {
		t.Errorf("test accuracy %.4f; want at least 0.98", ev.Accuracy)
	}
	if net.Metrics.TestAccuracy != ev.Accuracy {
		t.Errorf("the file says test accuracy %.4f; measured %.4f", net.Metrics.TestAccuracy, ev.Accuracy)
	}
}

// TestLongTrainFullMNIST trains the default architecture on all 60,000 images. It is kept out of the race pass
// (-short), where the detector slows the element-wise loops about tenfold; CI runs it once without -race.
func TestLongTrainFullMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("full MNIST training runs without -short (CI runs it without the race detector)")
	}
	trainSet, testSet := loadMNIST(t)
	req := DefaultRequest()
	req.Hidden = []int{128, 64}
	req.Epochs = 5
	req.EarlyStoppingPatience = 0
	res, err := Train(context.Background(), req, trainSet, Options{OnEpoch: func(e Epoch) {
		t.Logf("epoch %d: loss %.4f train %.4f val %.4f in %.2fs", e.Epoch, e.Loss, e.TrainAccuracy, e.ValAccuracy, e.Seconds)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(res.Network, testSet)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy %.4f after %d epochs, %.1fs of training", ev.Accuracy, len(res.History), res.Network.Metrics.TrainSeconds)
	if ev.Accuracy < 0.97 {
		t.Errorf("test accuracy %.4f after 5 epochs on full MNIST; want at least 0.97", ev.Accuracy)
	}
}
