package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/perceptron-dev/perceptron/internal/app"
	"github.com/perceptron-dev/perceptron/internal/atomicfile"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/s3store"
)

// importCmd stores an ONNX model in the registry as a new version, activating it only when asked.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("onnx", "", "ONNX file to import (required)")
	name := fs.String("name", "", "model name (default: the file's, else "+onnx.DefaultName+")")
	labels := fs.String("labels", "", "comma-separated class labels in output order (default: the file's, else 0..n-1)")
	preprocess := fs.String("preprocess", "", "mnist or resize (default: the file's, else mnist for 28x28 inputs and resize otherwise)")
	width := fs.Int("input-width", 0, "image width the input holds (default: from the input's shape, 28 for 784 values)")
	height := fs.Int("input-height", 0, "image height the input holds")
	activate := fs.String("activate", "never", "after storing: never or always make it the active version")
	modelDir := fs.String("model-dir", envOr(getenv, "MODEL_DIR", "./models"), "model registry to store the new version in (env MODEL_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *path == "":
		return errors.New("server import: -onnx FILE is required")
	case *activate != "never" && *activate != "always":
		return fmt.Errorf("-activate %q: want never or always (an imported model has no validation data for if_better)", *activate)
	}
	opts := onnx.Options{Name: *name, Labels: onnx.SplitLabels(*labels), Preprocess: model.Preprocessing(*preprocess),
		InputWidth: *width, InputHeight: *height}
	if epoch := getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		secs, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %v", epoch, err)
		}
		opts.Created = time.Unix(secs, 0).UTC()
	}
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	net, err := onnx.Import(f, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	reg, err := openRegistry(*modelDir, getenv)
	if err != nil {
		return err
	}
	if err := reg.Put(net); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored version %s (%s, layers %s, %s, from %s %s opset %d) in %s\n", net.Version, net.Name,
		joinInts(net.Layers), net.Activation, net.Origin.Producer, net.Origin.ProducerVersion, net.Origin.Opset, *modelDir)
	if *activate == "always" {
		if _, err := reg.Activate(net.Version); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "activated %s\n", net.Version)
	}
	return nil
}

// exportCmd writes a registry version, or a model file, as ONNX.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	which := fs.String("model", "", "version in the registry, or path of a .pcpt model file (default: the active version)")
	out := fs.String("out", "", "ONNX file to write (required)")
	modelDir := fs.String("model-dir", envOr(getenv, "MODEL_DIR", "./models"), "model registry (env MODEL_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *out == "":
		return errors.New("server export: -out FILE is required")
	}
	var net *model.Network
	if st, err := os.Stat(*which); err == nil && st.Mode().IsRegular() {
		net, err = model.Load(*which)
		if err != nil {
			return err
		}
	} else {
		reg, err := openRegistry(*modelDir, getenv)
		if err != nil {
			return err
		}
		if *which == "" {
			net, _, err = reg.LoadActive()
		} else {
			net, err = reg.Load(*which)
		}
		if err != nil {
			return err
		}
	}
	data, err := onnx.Export(net)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s %s as ONNX (%d bytes)\n", *out, net.Name, net.Version, len(data))
	return nil
}

// openRegistry opens the registry in dir (a folder, or an s3:// bucket reached as the AWS variables say) with the
// embedded default model, as the server does.
func openRegistry(dir string, getenv func(string) string) (*registry.Registry, error) {
	embedded, err := model.Default()
	if err != nil {
		return nil, err
	}
	var s3 *s3store.Config
	if s3store.IsURL(dir) {
		c, err := s3store.ConfigFromEnv(dir, getenv)
		if err != nil {
			return nil, err
		}
		s3 = &c
	}
	return app.OpenRegistry(dir, s3, embedded, getenv("CACHE_DIR"))
}
