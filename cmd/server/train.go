package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// trainFlags binds the fields of a training request to flags named like its JSON fields.
func trainFlags(fs *flag.FlagSet, r *train.Request) {
	fs.StringVar(&r.Dataset, "dataset", r.Dataset, "data set to train on (mnist is built in)")
	fs.Func("hidden", "comma-separated hidden layer widths, e.g. 256,128 (empty: none) (default "+joinInts(r.Hidden)+")",
		func(s string) error {
			h, err := parseInts(s)
			r.Hidden = h
			return err
		})
	fs.StringVar(&r.Activation, "activation", r.Activation, "hidden activation: relu, sigmoid or tanh")
	fs.StringVar(&r.Optimizer, "optimizer", r.Optimizer, "sgd (with momentum), adam or lbfgs")
	fs.Float64Var(&r.LearningRate, "learning_rate", r.LearningRate, "learning rate (sgd, adam)")
	fs.Float64Var(&r.Momentum, "momentum", r.Momentum, "momentum (sgd)")
	fs.IntVar(&r.BatchSize, "batch_size", r.BatchSize, "mini-batch size (sgd, adam)")
	fs.IntVar(&r.Epochs, "epochs", r.Epochs, "epochs (lbfgs: major iterations)")
	fs.Float64Var(&r.L2, "l2", r.L2, "L2 weight decay")
	fs.Uint64Var(&r.Seed, "seed", r.Seed, "random seed for initialisation, split and shuffling")
	fs.Float64Var(&r.ValidationSplit, "validation_split", r.ValidationSplit, "fraction of the training data held out for validation")
	fs.IntVar(&r.EarlyStoppingPatience, "early_stopping_patience", r.EarlyStoppingPatience, "stop after this many epochs without better validation accuracy (0: never)")
	fs.IntVar(&r.Limit, "limit", r.Limit, "use only the first N training examples (0: all)")
	fs.StringVar(&r.Activate, "activate", r.Activate, "after training: never, if_better (than the active model, on the validation split) or always make it the active version, which servers sharing -model-dir then serve")
	fs.BoolVar(&r.Augment, "augment", r.Augment, "augment: random rotation, scale, shear and shift of each example every epoch")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func trainCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	req := train.DefaultRequest()
	// A server may be serving from the same MODEL_DIR: the command line changes what it serves only when asked.
	req.Activate = "never"
	trainFlags(fs, &req)
	out := fs.String("out", "", "also write the trained model to this file")
	modelDir := fs.String("model-dir", envOr(getenv, "MODEL_DIR", "./models"), "model registry to store the new version in, as POST /train does (env MODEL_DIR; empty: none)")
	name := fs.String("model", "", "the model name the version belongs to, as POST /train's model (default: the data set id followed by -mlp)")
	fs.StringVar(name, "name", "", "the same as -model")
	dataDir := fs.String("data-dir", envOr(getenv, "DATA_DIR", "./data"), "data set folder (env DATA_DIR)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	testEachEpoch := fs.Bool("test-each-epoch", false, "also report test accuracy after every epoch (not counted as training time), for time-to-accuracy figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := req.Validate(); err != nil {
		return err
	}
	trainSet, testSet, input, err := loadDataset(ctx, req.Dataset, *dataDir)
	if err != nil {
		return err
	}
	reqJSON, _ := json.Marshal(req)
	fmt.Fprintf(stderr, "training on %s (%d examples): %s\n", req.Dataset, trainSet.Head(req.Limit).Len(), reqJSON)

	bar := &progressBar{w: stderr, quiet: *quiet}
	var trained float64 // training seconds so far, for -test-each-epoch
	res, err := train.Train(ctx, req, trainSet, train.Options{
		Name:       *name,
		Input:      input,
		OnProgress: bar.update,
		OnEpoch: func(e train.Epoch) {
			bar.clear()
			fmt.Fprintf(stderr, "epoch %3d  loss %.4f  train %.2f%%  val %.2f%%  %.2fs\n",
				e.Epoch, e.Loss, 100*e.TrainAccuracy, 100*e.ValAccuracy, e.Seconds)
		},
		Inspect: func(e train.Epoch, net *model.Network) {
			if !*testEachEpoch || testSet == nil {
				return
			}
			trained += e.Seconds
			if ev, err := train.Evaluate(net, testSet); err == nil {
				fmt.Fprintf(stdout, "{\"epoch\": %d, \"train_seconds\": %.3f, \"test_accuracy\": %.4f}\n", e.Epoch, trained, ev.Accuracy)
			}
		},
	})
	bar.clear()
	if err != nil {
		return err
	}
	net := res.Network
	trainSeconds := net.Metrics.TrainSeconds
	if epoch := getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		// Reproducible builds: a fixed creation time makes the version (time + weight digest) identical whenever
		// the weights are, and leaving out the measured training time makes the whole file identical.
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %v", epoch, err)
		}
		net.Created = time.Unix(secs, 0).UTC()
		net.Metrics.TrainSeconds = 0
	}
	if testSet != nil {
		ev, err := train.Evaluate(net, testSet)
		if err != nil {
			return err
		}
		net.Metrics.TestAccuracy = ev.Accuracy
		fmt.Fprintf(stdout, "test accuracy %.2f%% (%d examples)\n", 100*ev.Accuracy, testSet.Len())
	}
	net.Version = model.NewVersion(net.Created, net.MLP.Params)
	if *modelDir != "" {
		reg, err := openRegistry(*modelDir, getenv)
		if err != nil {
			return err
		}
		// if_better compares with the active version of the model's own name; a name with none has nothing to beat.
		serving, _, err := reg.LoadActiveOf(net.Name)
		if errors.Is(err, registry.ErrNoActive) {
			serving, err = nil, nil
		}
		if err != nil {
			return err
		}
		activated, decision, err := train.Publish(reg, net, res.Validation, req.Activate, serving, false, nil, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "stored version %s in %s; activated: %v (%s)\n", net.Version, *modelDir, activated, decision)
		if activated {
			previous := "none"
			if serving != nil {
				previous = serving.Version
			}
			fmt.Fprintf(stdout, "the active version of model %s in %s is now %s instead of %s: servers sharing that folder switch to it within their WATCH_INTERVAL\n",
				net.Name, *modelDir, net.Version, previous)
		}
	}
	if *out != "" {
		if err := model.Save(*out, net); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
	}
	fmt.Fprintf(stdout, "version %s, layers %s, %.1fs of training\n", net.Version, joinInts(net.Layers), trainSeconds)
	return nil
}

// loadDataset returns a data set by name, "mnist" or the id of an uploaded one under dataDir/sets, with its test
// part when it has one.
func loadDataset(ctx context.Context, name, dataDir string) (trainSet, testSet *dataset.Set, input model.Input, err error) {
	store, err := uploads.Open(filepath.Join(dataDir, "sets"), uploads.Limits{})
	if err != nil {
		return nil, nil, model.Input{}, err
	}
	return (&uploads.Catalog{Store: store, DataDir: dataDir}).Load(ctx, name)
}

// progressBar draws one self-overwriting line of training progress, at most ten times a second.
type progressBar struct {
	w     io.Writer
	quiet bool
	last  time.Time
	drawn bool
}

func (b *progressBar) update(p train.Progress) {
	if b.quiet || time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := int(p.Fraction * width)
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%%  epoch %d/%d  loss %.4f  acc %.2f%%  eta %s ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*p.Fraction, p.Epoch, p.Epochs,
		p.Loss, 100*p.TrainAccuracy, p.ETA.Round(time.Second))
	b.drawn = true
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 100))
		b.drawn = false
	}
}
