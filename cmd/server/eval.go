package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

func evalCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("model", "", "model file to evaluate (default: the embedded default model)")
	dataDir := fs.String("data-dir", envOr(getenv, "DATA_DIR", "./data"), "data set folder (env DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var net *model.Network
	var err error
	if *path == "" {
		net, err = model.Default()
	} else {
		net, err = model.Load(*path)
	}
	if err != nil {
		return err
	}
	dsName := net.Dataset
	if dsName == "" {
		dsName = dataset.MNISTName
	}
	trainSet, testSet, _, err := loadDataset(ctx, dsName, *dataDir)
	if err != nil {
		return err
	}
	if testSet == nil {
		// Uploaded sets have no separate test part; say so rather than report accuracy on training data as if
		// it were a test.
		fmt.Fprintf(stdout, "note: data set %s has no test part; evaluating on its %d training examples\n", dsName, trainSet.Len())
		testSet = trainSet
	}
	ev, err := train.Evaluate(net, testSet)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model %s %s (layers %s, %s)\n", net.Name, net.Version, joinInts(net.Layers), net.Activation)
	fmt.Fprintf(stdout, "test accuracy %.2f%% on %d examples of %s, mean loss %.4f\n\n", 100*ev.Accuracy, testSet.Len(), dsName, ev.Loss)
	raw := *net
	raw.Calibration = nil
	before, err := train.ECE(&raw, testSet)
	if err != nil {
		return err
	}
	after, err := train.ECE(net, testSet)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "expected calibration error (%d bins) %.4f uncalibrated, %.4f at temperature %.4f; default min_confidence %.4f\n\n",
		train.ECEBins, before, after, net.Temperature(), net.MinConfidence())
	printConfusion(stdout, net.Labels, ev.Confusion)
	return nil
}

// printConfusion prints the confusion matrix: a row per true class, a column per predicted class.
func printConfusion(w io.Writer, labels []string, m [][]int) {
	width := 5
	for _, l := range labels {
		width = max(width, len(l)+1)
	}
	fmt.Fprintf(w, "%-6s%s\n", "", "predicted →")
	fmt.Fprintf(w, "%-6s", "true")
	for _, l := range labels {
		fmt.Fprintf(w, "%*s", width, l)
	}
	fmt.Fprintf(w, "%8s\n", "recall")
	for i, row := range m {
		fmt.Fprintf(w, "%-6s", labels[i])
		total := 0
		for _, v := range row {
			fmt.Fprintf(w, "%*d", width, v)
			total += v
		}
		recall := 0.0
		if total > 0 {
			recall = float64(row[i]) / float64(total)
		}
		fmt.Fprintf(w, "%7.2f%%\n", 100*recall)
	}
}
