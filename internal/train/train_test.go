package train

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// loadMNIST returns the real MNIST sets, fetched through the Go module proxy like the server does.
func loadMNIST(t testing.TB) (trainSet, testSet *dataset.Set) {
	return mnisttest.Train(t), mnisttest.Test(t)
}

func smallRequest() Request {
	r := DefaultRequest()
	r.Hidden = []int{32}
	r.Limit = 3000
	r.Epochs = 3
	r.ValidationSplit = 0.1
	return r
}

func TestEveryOptimizerLearnsMNIST(t *testing.T) {
	trainSet, testSet := loadMNIST(t)
	for _, tt := range []struct {
		optimizer, activation string
		lr                    float64
		want                  float64
	}{
		{"adam", "relu", 0.001, 0.85},
		{"sgd", "relu", 0.05, 0.85},
		{"sgd", "sigmoid", 0.5, 0.80},
		{"adam", "tanh", 0.001, 0.85},
		{"lbfgs", "relu", 0, 0.80},
	} {
		t.Run(tt.optimizer+"/"+tt.activation, func(t *testing.T) {
			req := smallRequest()
			req.Optimizer, req.Activation = tt.optimizer, tt.activation
			if tt.lr > 0 {
				req.LearningRate = tt.lr
			}
			if tt.optimizer == "lbfgs" {
				req.Epochs = 25
			}
			var epochs []Epoch
			res, err := Train(context.Background(), req, trainSet, Options{OnEpoch: func(e Epoch) { epochs = append(epochs, e) }})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Evaluate(res.Network, testSet)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("test accuracy %.4f after %d epochs; history %+v", ev.Accuracy, len(res.History), res.History[len(res.History)-1])
			if ev.Accuracy < tt.want {
				t.Errorf("test accuracy %.4f; want at least %.2f", ev.Accuracy, tt.want)
			}
			if len(epochs) != len(res.History) || len(epochs) == 0 {
				t.Errorf("OnEpoch called %d times for %d epochs", len(epochs), len(res.History))
			}
			if e := res.History[0]; e.ValAccuracy == 0 || e.Loss <= 0 {
				t.Errorf("first epoch report %+v lacks validation accuracy or loss", e)
			}
			if res.Network.Metrics.ValidationAccuracy == 0 || res.Network.Dataset != "mnist" || len(res.Network.Hyperparameters) == 0 {
				t.Errorf("model info %+v lacks metrics, data set or hyper-parameters", res.Network.Info)
			}
		})
	}
}

func TestTrainIsReproducible(t *testing.T) {
	trainSet, _ := loadMNIST(t)
	req := smallRequest()
	req.Epochs = 1
	a, err := Train(context.Background(), req, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), req, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Network.MLP.Params {
		if a.Network.MLP.Params[i] != b.Network.MLP.Params[i] {
			t.Fatalf("parameter %d differs between two runs with seed %d: %v, %v", i, req.Seed, a.Network.MLP.Params[i], b.Network.MLP.Params[i])
		}
	}
	req.Seed++
	c, err := Train(context.Background(), req, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.MLP.Params[0] == a.Network.MLP.Params[0] && c.Network.MLP.Params[1] == a.Network.MLP.Params[1] {
		t.Error("a different seed gave the same weights")
	}
}

func TestCancelStopsWithinOneMiniBatch(t *testing.T) {
	trainSet, _ := loadMNIST(t)
	for _, opt := range []string{"adam", "lbfgs"} {
		t.Run(opt, func(t *testing.T) {
			req := smallRequest()
			req.Optimizer = opt
			req.Limit = 20000
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			_, err := Train(ctx, req, trainSet, Options{
				OnProgress: func(Progress) {
					calls++
					cancel()
				},
				OnEpoch: func(e Epoch) { t.Errorf("epoch %d finished after cancellation", e.Epoch) },
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v; want context.Canceled", err)
			}
			if calls != 1 {
				t.Errorf("progress reported %d times; want the run to stop after the first", calls)
			}
		})
	}
}

func TestEarlyStoppingRestoresTheBestEpoch(t *testing.T) {
	trainSet, _ := loadMNIST(t)
	req := smallRequest()
	req.Limit = 500
	req.Epochs = 60
	req.EarlyStoppingPatience = 2
	res, err := Train(context.Background(), req, trainSet, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || len(res.History) >= req.Epochs {
		t.Fatalf("ran %d of %d epochs, stopped early: %v; want an early stop on 50 validation examples", len(res.History), req.Epochs, res.StoppedEarly)
	}
	best := 0.0
	for _, e := range res.History {
		best = max(best, e.ValAccuracy)
	}
	ev, _ := Evaluate(res.Network, res.Validation)
	if ev.Accuracy != best || res.Network.Metrics.ValidationAccuracy != best {
		t.Errorf("returned network scores %.3f on validation, metrics say %.3f; best epoch scored %.3f",
			ev.Accuracy, res.Network.Metrics.ValidationAccuracy, best)
	}
}

func TestRequestValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"too many hidden layers", func(r *Request) { r.Hidden = make([]int, 9) }, "hidden layers"},
		{"zero-width layer", func(r *Request) { r.Hidden = []int{0} }, "width"},
		{"absurd width", func(r *Request) { r.Hidden = []int{1 << 20} }, "width"},
		{"unknown activation", func(r *Request) { r.Activation = "swish" }, "activation"},
		{"unknown optimizer", func(r *Request) { r.Optimizer = "rmsprop" }, "optimizer"},
		{"zero learning rate", func(r *Request) { r.LearningRate = 0 }, "learning_rate"},
		{"momentum of one", func(r *Request) { r.Momentum = 1 }, "momentum"},
		{"zero batch", func(r *Request) { r.BatchSize = 0 }, "batch_size"},
		{"a million epochs", func(r *Request) { r.Epochs = 1e6 }, "epochs"},
		{"negative l2", func(r *Request) { r.L2 = -1 }, "l2"},
		{"validation split of 0.9", func(r *Request) { r.ValidationSplit = 0.9 }, "validation_split"},
		{"negative patience", func(r *Request) { r.EarlyStoppingPatience = -2 }, "patience"},
		{"negative limit", func(r *Request) { r.Limit = -5 }, "limit"},
		{"unknown activate", func(r *Request) { r.Activate = "sometimes" }, "activate"},
		{"empty dataset", func(r *Request) { r.Dataset = "" }, "dataset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultRequest()
			tt.edit(&r)
			err := r.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v; want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	if r := DefaultRequest(); r.Validate() != nil {
		t.Errorf("defaults do not validate: %v", r.Validate())
	}
}

func TestEvaluateRefusesMismatchedData(t *testing.T) {
	_, testSet := loadMNIST(t)
	n := model.NewMLP[float32]([]int{100, 10}, model.ReLU)
	net := &model.Network{MLP: n}
	if _, err := Evaluate(net, testSet); err == nil {
		t.Error("784-pixel images on a 100-input network: got nil error")
	}
}

func TestTrainGivesTheSameWeightsOnAnyNumberOfCores(t *testing.T) {
	trainSet, _ := loadMNIST(t)
	req := smallRequest()
	req.Hidden = []int{128, 64} // large enough for parallel products and optimizer steps
	req.Epochs = 1
	run := func(procs int) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		res, err := Train(context.Background(), req, trainSet, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Network.MLP.Params
	}
	one, many := run(1), run(4)
	for i := range one {
		if one[i] != many[i] {
			t.Fatalf("parameter %d: %v with 1 core, %v with 4", i, one[i], many[i])
		}
	}
}

// TestLBFGSReportsProgressWhenItConvergesAtOnce trains on two blank images with opposite labels: the gradient is zero
// from the start, so L-BFGS converges before its first major iteration. The run must still report its one epoch to
// both callbacks, as a job's progress shows it.
func TestLBFGSReportsProgressWhenItConvergesAtOnce(t *testing.T) {
	set := &dataset.Set{Name: "blank", Classes: []string{"a", "b"}, Rows: 2, Cols: 2, X: make([]byte, 8), Y: []byte{0, 1}}
	req := DefaultRequest()
	req.Optimizer, req.Hidden, req.Epochs, req.ValidationSplit = "lbfgs", []int{4}, 2, 0
	var progress []Progress
	var epochs []Epoch
	_, err := Train(context.Background(), req, set, Options{
		OnProgress: func(p Progress) { progress = append(progress, p) },
		OnEpoch:    func(e Epoch) { epochs = append(epochs, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 1 || len(progress) != 1 {
		t.Fatalf("%d epochs and %d progress reports; want 1 of each", len(epochs), len(progress))
	}
	if p := progress[0]; p.Epoch != 1 || p.Fraction != 1 || p.Loss != epochs[0].Loss || p.TrainAccuracy != 0.5 {
		t.Errorf("progress %+v; want epoch 1, all done, with the epoch's loss %v and accuracy 0.5", p, epochs[0].Loss)
	}
}
