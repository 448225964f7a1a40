package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
)

// The Open Inference Protocol (KServe v2) REST surface, so standard inference clients can talk to the service.
// Its errors are {"error": "..."} as that protocol requires, not problem+json.

type v2Tensor struct {
	Name       string          `json:"name"`
	Shape      []int           `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
	binary     []byte          // the tensor's bytes from binary tensor data (v2binary.go), when it gave binary_data_size
}

type v2InferRequest struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []v2Tensor     `json:"inputs"`
	Outputs    []struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters,omitempty"`
	} `json:"outputs,omitempty"`
}

type v2OutputTensor struct {
	Name       string         `json:"name"`
	Shape      []int          `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"` // []float32, []bool or []string as Datatype says; absent when binary
}

type v2InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id,omitempty"`
	Outputs      []v2OutputTensor `json:"outputs"`
}

func v2Error(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// invalid makes a plain error from reading a request a 400 with its message; an error that has a kind, or a row
// in domainErrors, keeps its own.
func invalid(err error) error {
	if e := asError(err); e.Kind != KindInternal {
		return e
	}
	return &Error{Kind: KindInvalid, Detail: err.Error(), Err: err}
}

// v2Model returns the network that name (and version, on the version routes) name, else answers 404 listing the
// models there are. The caller calls release once it has answered.
func (s *Server) v2Model(w http.ResponseWriter, r *http.Request) (_ *model.Network, release func()) {
	if s.cfg.Models != nil {
		net, release, err := s.cfg.Models.Acquire(urlParam(r, "name"), urlParam(r, "version"))
		if err != nil {
			s.fail(w, r, err)
			return nil, nil
		}
		return net, release
	}
	net := s.engine.Model()
	if name := urlParam(r, "name"); net == nil || name != net.Name {
		v2Error(w, http.StatusNotFound, fmt.Sprintf("model %q is not served here", truncate(name, 64)))
		return nil, nil
	}
	if v := urlParam(r, "version"); v != "" && v != net.Version {
		v2Error(w, http.StatusNotFound, fmt.Sprintf("version %q of model %q is not loaded; only the active version %q is served",
			truncate(v, 64), net.Name, net.Version))
		return nil, nil
	}
	return net, func() {}
}

func (s *Server) handleV2Live() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}
}

func (s *Server) handleV2Ready() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ready := !s.Draining() && s.engine.Model() != nil
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]bool{"ready": ready})
	}
}

func (s *Server) handleV2ModelReady() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if net, release := s.v2Model(w, r); net != nil {
			defer release()
			status := http.StatusOK
			if s.Draining() {
				status = http.StatusServiceUnavailable
			}
			writeJSON(w, status, map[string]any{"name": net.Name, "ready": !s.Draining()})
		}
	}
}

func (s *Server) handleV2ModelMetadata() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		net, release := s.v2Model(w, r)
		if net == nil {
			return
		}
		release()
		meta := oip.Metadata(net)
		meta.Outputs = append(meta.Outputs, honestOutputsMeta...)
		writeJSON(w, http.StatusOK, meta)
	}
}

// handleV2Infer accepts one input tensor: FP32 of shape [N, inputs] with values in 0..1, or BYTES of shape [N]
// (or [N,1]) holding encoded images (base64 in JSON, raw in binary tensor data), and answers the FP32 [N, classes]
// probabilities, as JSON or binary tensor data (v2binary.go).
func (s *Server) handleV2Infer() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		net, release := s.v2Model(w, r)
		if net == nil {
			return
		}
		defer release()
		info(r.Context()).model = net.Name
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PredictTimeout)
		defer cancel()
		hold := s.memory.Hold()
		defer hold.Release()
		body, err := readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength, s.cfg.MaxBodyBytes, hold)
		if err == nil {
			// The decoder's copy of the body and the strings or numbers it becomes.
			err = memoryError(hold.Grow(2*int64(len(body))), "the JSON body")
		}
		if err != nil {
			s.fail(w, r, invalid(bodyError(err)))
			return
		}
		req, err := parseV2Infer(body, r.Header.Values(binaryHeader))
		if err != nil {
			s.fail(w, r, invalid(err))
			return
		}
		if len(req.Inputs) != 1 {
			s.fail(w, r, invalid(fmt.Errorf("expected exactly one input tensor, got %d", len(req.Inputs))))
			return
		}
		for _, o := range req.Outputs {
			if !v2OutputNames[o.Name] {
				s.fail(w, r, invalid(fmt.Errorf("unknown output %q; this model has \"probabilities\", \"accepted\" and \"reason\"", truncate(o.Name, 64))))
				return
			}
		}
		minConf, minGiven, err := v2MinConfidence(req.Parameters)
		if err != nil {
			s.fail(w, r, invalid(err))
			return
		}
		in := req.Inputs[0]
		if in.Name != oip.InputName && !(in.Name == oip.ImageName && in.Datatype == "BYTES") {
			s.fail(w, r, invalid(fmt.Errorf("unknown input %q; this model takes %q (BYTES also as %q)", truncate(in.Name, 64), oip.InputName, oip.ImageName)))
			return
		}
		size := net.MLP.Inputs()
		var x []float32
		var n int
		var noDigit []bool
		switch in.Datatype {
		case "FP32", "FP64":
			if in.binary != nil {
				x, n, err = v2BinaryFloats(in, size, s.cfg.MaxImages)
			} else {
				x, n, err = v2Floats(in, size, s.cfg.MaxImages)
			}
			if err == nil && net.Input.Preprocess == model.PreprocessMNIST {
				b := batchInput{x: x, n: n, size: size}
				b.markBlankRows(0)
				noDigit = b.noDigit
			}
		case "BYTES":
			if in.binary != nil {
				x, n, noDigit, err = s.v2BinaryImages(ctx, in, net.Input, s.cfg.MaxImages)
				break
			}
			x, n, noDigit, err = s.v2Images(ctx, in, net.Input, s.cfg.MaxImages)
		default:
			err = fmt.Errorf("datatype %q is not supported; send FP32 [N,%d] or BYTES [N] of base64 images", in.Datatype, size)
		}
		if err != nil {
			s.fail(w, r, invalid(err))
			return
		}
		info(r.Context()).images = n
		res, err := s.engine.PredictOn(ctx, net, x, n, size)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		th := threshold(res.Model, minConf, minGiven)
		s.metrics.countAnswers(res, noDigit, th)
		var names []string
		for _, o := range req.Outputs {
			names = append(names, o.Name)
		}
		writeV2Infer(w, &req, v2InferResponse{
			ModelName: res.Model.Name, ModelVersion: res.Model.Version, ID: req.ID,
			Outputs: v2Outputs(names, res, n, noDigit, th),
		})
	}
}

// v2Floats reads a [N, size] numeric tensor whose data is flat or nested, checking shape, count and range.
func v2Floats(t v2Tensor, size, maxRows int) ([]float32, int, error) {
	if len(t.Shape) != 2 || t.Shape[1] != size || t.Shape[0] < 1 {
		return nil, 0, fmt.Errorf("input %q has shape %v; want [N,%d]", t.Name, t.Shape, size)
	}
	n := t.Shape[0]
	if n > maxRows {
		return nil, 0, &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%d rows; at most %d per request", n, maxRows)}
	}
	x, err := readTensor(t.Data, t.Shape, make([]float32, 0, n*size))
	if err != nil {
		return nil, 0, fmt.Errorf("input %q %v", t.Name, err)
	}
	return x, n, nil
}

// v2Images decodes a BYTES tensor of base64-encoded images through the model's preprocessing.
func (s *Server) v2Images(ctx context.Context, t v2Tensor, in model.Input, maxRows int) ([]float32, int, []bool, error) {
	if len(t.Shape) < 1 || len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[1] != 1) || t.Shape[0] < 1 {
		return nil, 0, nil, fmt.Errorf("input %q has shape %v; want [N] or [N,1]", t.Name, t.Shape)
	}
	var items []string
	if err := json.Unmarshal(t.Data, &items); err != nil {
		// Nested [[...]] for shape [N,1]. The failed attempt may have left an empty item per row.
		items = nil
		var nested [][]string
		if err2 := json.Unmarshal(t.Data, &nested); err2 != nil {
			return nil, 0, nil, fmt.Errorf("input %q data must be base64 strings, flat for shape [N] or one per row for [N,1]", t.Name)
		}
		if len(t.Shape) != 2 {
			return nil, 0, nil, fmt.Errorf("input %q has shape %v but nested data; nest rows only for [N,1]", t.Name, t.Shape)
		}
		for i, row := range nested {
			if len(row) != 1 {
				return nil, 0, nil, fmt.Errorf("input %q row %d holds %d items; shape [N,1] takes one", t.Name, i, len(row))
			}
			items = append(items, row[0])
		}
	}
	if len(items) != t.Shape[0] {
		return nil, 0, nil, fmt.Errorf("input %q holds %d items; shape %v says %d", t.Name, len(items), t.Shape, t.Shape[0])
	}
	if len(items) > maxRows {
		return nil, 0, nil, &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%d images; at most %d per request", len(items), maxRows)}
	}
	data := make([][]byte, len(items))
	for i, enc := range items {
		if _, after, ok := strings.Cut(enc, ";base64,"); ok && strings.HasPrefix(enc, "data:") {
			enc = after
		}
		var err error
		if data[i], err = base64.StdEncoding.DecodeString(enc); err != nil {
			return nil, 0, nil, fmt.Errorf("input %q item %d is not base64", t.Name, i)
		}
	}
	return s.prepareImages(ctx, data, in)
}

// ModelFinder finds the network to serve for a model name and version (inference.Models).
type ModelFinder interface {
	Acquire(name, version string) (net *model.Network, release func(), err error)
}
