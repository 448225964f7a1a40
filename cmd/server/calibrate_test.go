package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestCalibrateCommandRedoesWhatTrainingDid trains a small model (training calibrates it), strips the calibration
// as a file from before calibration existed would lack it, and checks that `server calibrate` restores exactly the
// same temperature and threshold from the held-out split the header's training request names; with
// -min_confidence it stores the threshold given.
func TestCalibrateCommandRedoesWhatTrainingDid(t *testing.T) {
	dir := t.TempDir()
	trained, plain := filepath.Join(dir, "trained.pcpt"), filepath.Join(dir, "plain.pcpt")
	getenv := func(k string) string { return map[string]string{"DATA_DIR": t.TempDir()}[k] }
	err := run(context.Background(), []string{"server", "train", "-hidden", "16", "-epochs", "1", "-limit", "2000",
		"-model-dir", "", "-quiet", "-out", trained}, getenv, nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.Load(trained)
	if err != nil {
		t.Fatal(err)
	}
	want := net.Calibration
	if want == nil || want.Examples != 200 {
		t.Fatalf("trained model's calibration %+v; want one on the 200 held-out examples", want)
	}
	if net.FeatureDistance != nil {
		t.Fatalf("training fitted a feature distance; only calibrate -feature-distance does")
	}
	net.Calibration = nil
	if err := model.Save(plain, net); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"server", "calibrate", "-model", plain}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := model.Load(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got.Calibration == nil || *got.Calibration != *want || got.Version != net.Version {
		t.Errorf("calibrated again: %+v, version %s; training stored %+v, version %s (output %q)", got.Calibration, got.Version, want, net.Version, out.String())
	}
	if got.FeatureDistance != nil {
		t.Errorf("calibrate without -feature-distance fitted one")
	}
	// With -feature-distance: fitted on the 1800 training examples, and the same on every run.
	withDistance := filepath.Join(dir, "distance.pcpt")
	var files [2][]byte
	for i := range files {
		if err := run(context.Background(), []string{"server", "calibrate", "-model", plain, "-out", withDistance, "-feature-distance"}, getenv, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		if files[i], err = os.ReadFile(withDistance); err != nil {
			t.Fatal(err)
		}
	}
	d, err := model.Unmarshal(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.FeatureDistance == nil || d.FeatureDistance.Examples != 1800 || d.Version != net.Version {
		t.Fatalf("calibrate -feature-distance: %+v, version %s; want a feature distance on 1800 examples, version %s", d.FeatureDistance, d.Version, net.Version)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("calibrate -feature-distance wrote different files on two runs")
	}
	if err := run(context.Background(), []string{"server", "calibrate", "-model", plain, "-min_confidence", "0.75"}, getenv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, _ := model.Load(plain); got.MinConfidence() != 0.75 {
		t.Errorf("min_confidence after -min_confidence 0.75: %v", got.MinConfidence())
	}
	for _, args := range [][]string{{}, {"-model", plain, "-min_confidence", "2"}, {"-model", filepath.Join(dir, "missing.pcpt")}} {
		if err := run(context.Background(), append([]string{"server", "calibrate"}, args...), getenv, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("calibrate %q: no error", args)
		}
	}
}
