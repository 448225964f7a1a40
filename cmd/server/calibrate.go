package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// calibrateCmd calibrates a model file that training did not (one trained before training calibrated), on the
// very examples its training held out: the training request in the header names the data set, seed, limit and
// split, so they are drawn again exactly. With -feature-distance it also fits the feature distance
// (model.FeatureDistance) of a network with a hidden layer: class means and covariance on the training part,
// threshold on the held-out part. With -gate it fits a gate (model.Gate, see train.FitGate), a second network
// stored after the digit network's weights, which changes the answers and so the version. Otherwise only the
// header changes; the weights, and so the version, stay.
func calibrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("model", "", "model file to calibrate (required)")
	out := fs.String("out", "", "where to write the calibrated model (default: over -model)")
	minConf := fs.Float64("min_confidence", -1, "default threshold to store, 0..1 (default: chosen from the held-out split)")
	distance := fs.Bool("feature-distance", false, "also fit the hidden-layer feature distance that answers not_a_digit")
	gate := fs.Bool("gate", false, "also fit the gate, a digit / not-a-digit network that answers not_a_digit (renames the version)")
	gopts := train.DefaultGateOptions()
	fs.Uint64Var(&gopts.Seed, "gate-seed", gopts.Seed, "seed of the gate's generated pictures, initialisation and shuffling")
	fs.IntVar(&gopts.Epochs, "gate-epochs", gopts.Epochs, "passes over the gate's pictures")
	fs.IntVar(&gopts.Digits, "gate-digits", gopts.Digits, "digit pictures the gate is trained on")
	fs.IntVar(&gopts.NonDigits, "gate-non-digits", gopts.NonDigits, "generated non-digit pictures the gate is trained on")
	fs.Float64Var(&gopts.Reject, "gate-reject", gopts.Reject, "share of held-out digits the gate's threshold turns away")
	dataDir := fs.String("data-dir", envOr(getenv, "DATA_DIR", "./data"), "data set folder (env DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		return errors.New("usage: server calibrate -model file.pcpt [-out file.pcpt] [-min_confidence 0..1] [-feature-distance] [-gate]")
	}
	if *minConf != -1 && !(*minConf >= 0 && *minConf <= 1) {
		return fmt.Errorf("-min_confidence %v outside 0..1", *minConf)
	}
	if *out == "" {
		*out = *in
	}
	net, err := model.Load(*in)
	if err != nil {
		return err
	}
	req := train.DefaultRequest()
	if len(net.Hyperparameters) == 0 {
		return fmt.Errorf("%s records no training request, so its held-out split is unknown", *in)
	}
	if err := json.Unmarshal(net.Hyperparameters, &req); err != nil {
		return fmt.Errorf("%s: training request in the header: %v", *in, err)
	}
	data, _, _, err := loadDataset(ctx, req.Dataset, *dataDir)
	if err != nil {
		return err
	}
	fit, val := train.Split(req, data)
	if val == nil {
		return fmt.Errorf("%s was trained without a validation split; there is no held-out data to calibrate on", *in)
	}
	cal, err := train.Calibrate(net, val, false)
	if err != nil {
		return err
	}
	if *minConf != -1 {
		cal.MinConfidence = math.Round(*minConf*1e4) / 1e4
	}
	net.Calibration = cal
	if *distance {
		if net.FeatureDistance, err = train.FitFeatureDistance(net, fit, val, train.DefaultRejectInDistribution, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "feature distance: class means and covariance of the last hidden layer on %d training examples, threshold %.4f\n",
			net.FeatureDistance.Examples, net.FeatureDistance.Threshold)
	}
	if *gate {
		gf, err := train.FitGate(ctx, net, fit, val, gopts)
		if err != nil {
			return err
		}
		net.SetGate(gf.Gate, gf.MLP)
		fmt.Fprintf(stdout, "gate %v on %d digits and %d non-digits: threshold %.4f turns away %.2f%% of %d held-out digits; version %s\n",
			gf.MLP.Sizes, gf.Gate.Digits, gf.Gate.NonDigits, gf.Gate.Threshold, 100*gf.Gate.HeldOutRejected, gf.HeldOut, net.Version)
	}
	if err := model.Save(*out, net); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "temperature %.4f, min_confidence %.4f; expected calibration error on the %d held-out examples %.4f before, %.4f after; wrote %s\n",
		cal.Temperature, cal.MinConfidence, cal.Examples, cal.ECEBefore, cal.ECEAfter, *out)
	return nil
}
