package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

// Results of an ONNX import, the bounded values of perceptron_model_imports_total's result label.
const (
	ImportStored      = "stored"      // a new version is in the registry
	ImportInvalid     = "invalid"     // the request itself was wrong: form, fields, media type
	ImportMalformed   = "malformed"   // the file is not ONNX: truncated, random, inconsistent
	ImportUnsupported = "unsupported" // valid ONNX that is not an MLP perceptron serves
	ImportTooLarge    = "too_large"   // the body, the file or a tensor over a limit
	ImportConflict    = "conflict"    // the version exists already
	ImportFailed      = "failed"      // our side failed: storing, activating
)

// registerImports creates the import counter on reg, every result at zero so rate() works from the first scrape.
func registerImports(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "perceptron", Name: "model_imports_total",
		Help: "ONNX model imports (POST /models), by result."}, []string{"result"})
	for _, r := range []string{ImportStored, ImportInvalid, ImportMalformed, ImportUnsupported, ImportTooLarge, ImportConflict, ImportFailed} {
		c.WithLabelValues(r)
	}
	reg.MustRegister(c)
	return c
}

// importResult names the result label of an import's error.
func importResult(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ImportStored
	case errors.Is(err, onnx.ErrTooLarge):
		return ImportTooLarge
	case errors.Is(err, onnx.ErrMalformed):
		return ImportMalformed
	case errors.Is(err, onnx.ErrUnsupported):
		return ImportUnsupported
	case errors.Is(err, registry.ErrExists):
		return ImportConflict
	case errors.As(err, &e) && e.Kind == KindTooLarge:
		return ImportTooLarge
	case errors.As(err, &e) && e.Kind != KindInternal:
		return ImportInvalid
	}
	return ImportFailed
}

// importParts are the multipart parts POST /models reads.
var importParts = map[string]bool{"model": true, "name": true, "labels": true, "preprocess": true,
	"input_width": true, "input_height": true, "input_channels": true, "activate": true}

// handleModelImport stores an ONNX model as a new registry version: multipart/form-data with the file in the part
// "model" and optional fields name, labels (comma-separated), preprocess, input_width, input_height, input_channels
// and activate (never, the default, or always). It answers 201 with the version's entry; nothing is stored unless
// the whole file imports.
func (s *Server) handleModelImport() http.HandlerFunc {
	// One import at a time: each holds its file, the decoded protobuf and the weights in memory at once, so this
	// bounds the memory imports take to one file's worth, whatever the number of admin clients.
	one := make(chan struct{}, 1)
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case one <- struct{}{}:
			defer func() { <-one }()
		case <-r.Context().Done():
			s.fail(w, r, r.Context().Err())
			return
		}
		net, activated, err := s.importModel(w, r)
		if s.metrics != nil && s.metrics.imports != nil {
			s.metrics.imports.WithLabelValues(importResult(err)).Inc()
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		o := net.Origin
		s.log.Info("model imported", zap.String("version", net.Version), zap.String("name", net.Name),
			zap.Ints("layers", net.Layers), zap.String("producer", o.Producer+" "+o.ProducerVersion),
			zap.Int64("opset", o.Opset), zap.Bool("activated", activated))
		e, err := s.registry.Get(net.Version)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Location", "/models/"+net.Version)
		writeJSON(w, http.StatusCreated, e)
	}
}

func (s *Server) importModel(w http.ResponseWriter, r *http.Request) (*model.Network, bool, error) {
	r.Body = http.MaxBytesReader(w, r.Body, onnx.DefaultMaxBytes+1<<20) // the file plus multipart framing and fields
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		return nil, false, errorf(KindUnsupported, `send multipart/form-data with the ONNX file in the part "model"`)
	}
	limit := int64(onnx.DefaultMaxBytes + 1<<20)
	hold := s.memory.Hold() // the file, held until it is imported
	defer hold.Release()
	parts := map[string][]byte{}
	if err := readParts(r, parts, hold, limit, importParts); err != nil {
		return nil, false, err
	}
	if parts["model"] == nil {
		return nil, false, errorf(KindInvalid, `send the ONNX file in the multipart part "model"`)
	}
	opts := onnx.Options{Name: string(parts["name"]), Labels: onnx.SplitLabels(string(parts["labels"])),
		Preprocess: model.Preprocessing(parts["preprocess"])}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"input_width", &opts.InputWidth}, {"input_height", &opts.InputHeight}, {"input_channels", &opts.InputChannels}} {
		if v, ok := parts[f.name]; ok {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				return nil, false, errorf(KindInvalid, f.name+" must be a positive whole number")
			}
			*f.dst = n
		}
	}
	activate := string(parts["activate"])
	switch activate {
	case "", "never", "always":
	case "if_better":
		return nil, false, errorf(KindUnprocessable, "activate=if_better compares validation accuracy, and an imported model comes without validation data: use never, then activate after checking it, or always")
	default:
		return nil, false, errorf(KindInvalid, fmt.Sprintf("activate %q: want never or always", truncate(activate, 32)))
	}

	net, err := onnx.ImportBytes(parts["model"], opts)
	if err != nil {
		return nil, false, err
	}
	if err := s.registry.Put(net); err != nil {
		return nil, false, err
	}
	if activate != "always" {
		return net, false, nil
	}
	if s.cfg.GoLive == nil {
		return net, false, errorf(KindUnavailable, "this server cannot activate models; the version is stored")
	}
	if _, err := s.cfg.GoLive(net.Version); err != nil {
		return nil, false, err
	}
	return net, true, nil
}

// handleModelExport answers a version as an ONNX file (see onnx.Export).
func (s *Server) handleModelExport() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		version := urlParam(r, "version")
		net, err := s.registry.Load(version)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		data, err := onnx.Export(net)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		// The version is a validated file-name-safe string, so it needs no quoting beyond the header's own.
		w.Header().Set("Content-Disposition", `attachment; filename="`+net.Version+`.onnx"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	}
}
