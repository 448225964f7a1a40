package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
)

const usage = `perceptron: a multilayer perceptron that serves, trains and swaps models.

Usage:
  server [flags]          serve HTTP (see server -h)
  server train [flags]    train a model from a data set and write it (see server train -h)
  server eval [flags]     print a model's test accuracy, calibration error and confusion matrix (see server eval -h)
  server calibrate [flags] fit a model file's temperature and threshold on its training's held-out split
  server import [flags]   store an ONNX model in the registry as a new version (see server import -h)
  server export [flags]   write a version or model file as ONNX (see server export -h)
`

// run is the whole program: main only supplies the process's arguments, environment and streams, so tests can run
// it in-process. It stops on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		cmd, rest = rest[0], rest[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, rest, getenv, stdout, stderr)
	case "train":
		err = trainCmd(ctx, rest, getenv, stdout, stderr)
	case "eval":
		err = evalCmd(ctx, rest, getenv, stdout, stderr)
	case "import":
		err = importCmd(ctx, rest, getenv, stdout, stderr)
	case "export":
		err = exportCmd(ctx, rest, getenv, stdout, stderr)
	case "calibrate":
		err = calibrateCmd(ctx, rest, getenv, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// envOr returns the environment variable name, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
