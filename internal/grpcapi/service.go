package grpcapi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
)

// ServerLive implements oippb.GRPCInferenceServiceServer.
func (s *Server) ServerLive(context.Context, *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	return &oippb.ServerLiveResponse{Live: true}, nil
}

// ServerReady implements oippb.GRPCInferenceServiceServer.
func (s *Server) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	return &oippb.ServerReadyResponse{Ready: !s.draining.Load() && s.engine.Model() != nil}, nil
}

// ServerMetadata implements oippb.GRPCInferenceServiceServer.
func (s *Server) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: oip.ServerName, Version: s.cfg.Version, Extensions: oip.Extensions()}, nil
}

// ModelReady implements oippb.GRPCInferenceServiceServer.
func (s *Server) ModelReady(_ context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	_, release, err := s.model(req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	release()
	return &oippb.ModelReadyResponse{Ready: !s.draining.Load()}, nil
}

// ModelMetadata implements oippb.GRPCInferenceServiceServer.
func (s *Server) ModelMetadata(_ context.Context, req *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	net, release, err := s.model(req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	release()
	m := oip.Metadata(net)
	tensors := func(ts []oip.TensorMeta) []*oippb.ModelMetadataResponse_TensorMetadata {
		out := make([]*oippb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &oippb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &oippb.ModelMetadataResponse{Name: m.Name, Versions: m.Versions, Platform: m.Platform,
		Inputs: tensors(m.Inputs), Outputs: tensors(outputsMeta(net))}, nil
}

// model returns the network that name (and version, if given) name, else a NotFound status listing the models
// there are; the caller calls release once it has answered. Without Config.Models only the engine's model serves.
func (s *Server) model(name, version string) (*model.Network, func(), error) {
	if s.cfg.Models != nil {
		net, release, err := s.cfg.Models.Acquire(name, version)
		switch {
		case errors.Is(err, inference.ErrUnknownModel):
			return nil, nil, status.Error(codes.NotFound, err.Error())
		case errors.Is(err, inference.ErrBusy):
			return nil, nil, status.Error(codes.Unavailable, err.Error())
		case err != nil:
			return nil, nil, status.Error(codes.Internal, "internal error")
		}
		return net, release, nil
	}
	net := s.engine.Model()
	switch {
	case net == nil:
		return nil, nil, status.Error(codes.Unavailable, "no model loaded")
	case name != net.Name:
		return nil, nil, status.Errorf(codes.NotFound, "model %q is not served here; this server serves %q", trunc(name), net.Name)
	case version != "" && version != net.Version:
		return nil, nil, status.Errorf(codes.NotFound, "version %q of model %q is not loaded; the active version %q is", trunc(version), net.Name, net.Version)
	}
	return net, func() {}, nil
}

// ModelInfer implements oippb.GRPCInferenceServiceServer. It takes one input: FP32 (or FP64) of shape [N, inputs]
// with values in 0..1, or BYTES of shape [N] or [N,1] holding encoded images, in typed contents or in
// raw_input_contents; it answers FP32 [N, classes] probabilities, and the honest answer's accepted (BOOL [N]) and
// reason (BYTES [N]) when named, as raw_output_contents when the input was raw (as Triton does) and as typed
// contents otherwise.
func (s *Server) ModelInfer(ctx context.Context, req *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	net, release, err := s.model(req.ModelName, req.ModelVersion)
	if err != nil {
		return nil, err
	}
	defer release()
	if len(req.Inputs) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "expected one input tensor (%q), got %d", oip.InputName, len(req.Inputs))
	}
	names := make([]string, len(req.Outputs))
	for i, o := range req.Outputs {
		if o.Name != oip.OutputName && o.Name != acceptedName && o.Name != reasonName {
			return nil, status.Errorf(codes.InvalidArgument, "unknown output %q; this model has %q, %q and %q",
				trunc(o.Name), oip.OutputName, acceptedName, reasonName)
		}
		names[i] = o.Name
	}
	minConf, minGiven, err := minConfidence(req.Parameters)
	if err != nil {
		return nil, err
	}
	in := req.Inputs[0]
	raw := len(req.RawInputContents) > 0
	switch {
	case raw && len(req.RawInputContents) != len(req.Inputs):
		return nil, status.Errorf(codes.InvalidArgument, "%d raw_input_contents for %d inputs; send one per input", len(req.RawInputContents), len(req.Inputs))
	case raw && in.Contents != nil:
		return nil, status.Error(codes.InvalidArgument, "input has both contents and raw_input_contents; send one of them")
	case in.Name != oip.InputName && !(in.Name == oip.ImageName && in.Datatype == "BYTES"):
		return nil, status.Errorf(codes.InvalidArgument, "unknown input %q; this model takes %q (BYTES also as %q)", trunc(in.Name), oip.InputName, oip.ImageName)
	}
	var rawData []byte
	if raw {
		rawData = req.RawInputContents[0]
	}
	x, n, err := s.inputs(ctx, net, in, raw, rawData)
	if err != nil {
		return nil, err
	}

	// The client's deadline governs, bounded by the server's own limit.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PredictTimeout)
	defer cancel()
	res, err := s.engine.PredictOn(ctx, net, x, n, net.MLP.Inputs())
	if err != nil {
		return nil, statusOf(err)
	}
	th := res.Model.MinConfidence()
	if minGiven {
		th = minConf
	}
	noDigit := blankRows(res.Model, x, n)
	if s.counted != nil {
		s.counted.CountAnswers(res, noDigit, th)
	}
	outs, rawOuts := outputs(names, res, n, noDigit, th, raw)
	return &oippb.ModelInferResponse{ModelName: res.Model.Name, ModelVersion: res.Model.Version, Id: req.Id,
		Outputs: outs, RawOutputContents: rawOuts}, nil
}

// inputs reads the input tensor into rows of model input.
func (s *Server) inputs(ctx context.Context, net *model.Network, in *oippb.ModelInferRequest_InferInputTensor, raw bool, rawData []byte) ([]float32, int, error) {
	size := net.MLP.Inputs()
	c := in.Contents
	if c == nil {
		c = &oippb.InferTensorContents{}
	}
	switch in.Datatype {
	case "FP32", "FP64":
		if len(in.Shape) != 2 || in.Shape[1] != int64(size) || in.Shape[0] < 1 {
			return nil, 0, status.Errorf(codes.InvalidArgument, "input %q has shape %v; want [N,%d]", trunc(in.Name), in.Shape, size)
		}
		if in.Shape[0] > int64(s.cfg.MaxImages) {
			return nil, 0, status.Errorf(codes.InvalidArgument, "%d rows; at most %d per request", in.Shape[0], s.cfg.MaxImages)
		}
		n := int(in.Shape[0])
		count := n * size
		var x []float32
		var err error
		switch {
		case raw && in.Datatype == "FP32":
			x, err = oip.ReadFP32(make([]float32, 0, count), rawData, count)
		case raw:
			x, err = oip.ReadFP64(make([]float32, 0, count), rawData, count)
		case in.Datatype == "FP32" && len(c.Fp32Contents) == count:
			x = c.Fp32Contents
		case in.Datatype == "FP64" && len(c.Fp64Contents) == count:
			x = make([]float32, count)
			for i, v := range c.Fp64Contents {
				x[i] = float32(v)
			}
		default:
			err = fmt.Errorf("contents hold %d fp32 and %d fp64 values; shape %v of %s needs %d",
				len(c.Fp32Contents), len(c.Fp64Contents), in.Shape, in.Datatype, count)
		}
		if err == nil {
			err = oip.CheckUnit(x)
		}
		if err != nil {
			return nil, 0, status.Errorf(codes.InvalidArgument, "input %q: %v", trunc(in.Name), err)
		}
		return x, n, nil
	case "BYTES":
		if len(in.Shape) < 1 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) || in.Shape[0] < 1 {
			return nil, 0, status.Errorf(codes.InvalidArgument, "input %q has shape %v; want [N] or [N,1]", trunc(in.Name), in.Shape)
		}
		if in.Shape[0] > int64(s.cfg.MaxImages) {
			return nil, 0, status.Errorf(codes.InvalidArgument, "%d images; at most %d per request", in.Shape[0], s.cfg.MaxImages)
		}
		n := int(in.Shape[0])
		items := c.BytesContents
		if raw {
			var err error
			if items, err = oip.SplitBytes(rawData, n); err != nil {
				return nil, 0, status.Errorf(codes.InvalidArgument, "input %q: %v", trunc(in.Name), err)
			}
		}
		if len(items) != n {
			return nil, 0, status.Errorf(codes.InvalidArgument, "input %q holds %d images; shape %v says %d", trunc(in.Name), len(items), in.Shape, n)
		}
		x, got, err := s.images.PrepareImages(ctx, items, net.Input)
		if err != nil {
			return nil, 0, statusOf(err)
		}
		return x, got, nil
	}
	return nil, 0, status.Errorf(codes.InvalidArgument, "datatype %q is not supported; send FP32 [N,%d] or BYTES [N] of encoded images", trunc(in.Datatype), size)
}

// trunc shortens a client's string for an error message.
func trunc(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}
