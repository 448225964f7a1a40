package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
)

// The Open Inference Protocol's binary tensor data extension (Triton's "binary_tensor_data"): a request body may be
// a JSON inference header of Inference-Header-Content-Length bytes followed by the raw data of the inputs whose
// parameters give a binary_data_size, in the order of the inputs; the data is the tensor's elements in row-major
// order, little-endian, and a BYTES element is a 4-byte little-endian length followed by its bytes. An output asked
// for with "binary_data": true (or every output, with the request parameter "binary_data_output": true) is answered
// the same way: its JSON carries binary_data_size instead of data, and its bytes follow the JSON header.

// binaryHeader names the length of the JSON header in a body with binary tensor data, in requests and responses.
const binaryHeader = "Inference-Header-Content-Length"

// parseV2Infer reads an inference request from its body: plain JSON, or, when the request has the
// Inference-Header-Content-Length header (its values are headerLen), JSON followed by binary tensor data. Each input
// with a binary_data_size gets its bytes in binary.
func parseV2Infer(body []byte, headerLen []string) (v2InferRequest, error) {
	if len(headerLen) > 0 {
		return parseBinaryBody(body, headerLen)
	}
	var req v2InferRequest
	if err := decodeJSON(bytes.NewReader(body), &req, false); err != nil {
		return req, err
	}
	return req, attachBinary(&req, nil, false)
}

// parseBinaryBody splits a body with binary tensor data by its header length values (one, a decimal count of
// bytes) and reads the request from it.
func parseBinaryBody(data []byte, headerLen []string) (v2InferRequest, error) {
	var req v2InferRequest
	if len(headerLen) != 1 {
		return req, errorf(KindInvalid, binaryHeader+" is given more than once")
	}
	n, err := strconv.ParseUint(headerLen[0], 10, 63)
	if err != nil {
		return req, errorf(KindInvalid, fmt.Sprintf("%s %q is not a byte count", binaryHeader, truncate(headerLen[0], 32)))
	}
	if n > uint64(len(data)) {
		return req, errorf(KindInvalid, fmt.Sprintf("%s is %d but the body has %d bytes", binaryHeader, n, len(data)))
	}
	if err := decodeJSON(bytes.NewReader(data[:n]), &req, false); err != nil {
		return req, err
	}
	return req, attachBinary(&req, data[n:], true)
}

// attachBinary hands each input with a binary_data_size its slice of rest, and checks that the sizes add up to
// exactly the bytes after the header. Without binary data (binary false) no input may give a size.
func attachBinary(req *v2InferRequest, rest []byte, binary bool) error {
	for i := range req.Inputs {
		in := &req.Inputs[i]
		v, ok := in.Parameters["binary_data_size"]
		if !ok {
			continue
		}
		if !binary {
			return errorf(KindInvalid, fmt.Sprintf("input %q gives binary_data_size but the request has no %s header", truncate(in.Name, 64), binaryHeader))
		}
		size, ok := v.(float64)
		if !ok || size < 0 || size != math.Trunc(size) || size > float64(math.MaxInt32) {
			return errorf(KindInvalid, fmt.Sprintf("input %q: binary_data_size must be a whole number of bytes", truncate(in.Name, 64)))
		}
		if len(in.Data) > 0 && string(in.Data) != "null" {
			return errorf(KindInvalid, fmt.Sprintf("input %q has both data and binary_data_size; send one of them", truncate(in.Name, 64)))
		}
		if int(size) > len(rest) {
			return errorf(KindInvalid, fmt.Sprintf("input %q: binary_data_size %d is more than the %d bytes left in the body", truncate(in.Name, 64), int(size), len(rest)))
		}
		in.binary, rest = rest[:int(size):int(size)], rest[int(size):]
	}
	if len(rest) > 0 {
		return errorf(KindInvalid, fmt.Sprintf("%d bytes of binary data follow the header beyond the inputs' binary_data_size", len(rest)))
	}
	return nil
}

// v2BinaryFloats reads an FP32 (or FP64) [N, size] tensor sent as binary data.
func v2BinaryFloats(t v2Tensor, size, maxRows int) ([]float32, int, error) {
	if len(t.Shape) != 2 || t.Shape[1] != size || t.Shape[0] < 1 {
		return nil, 0, fmt.Errorf("input %q has shape %v; want [N,%d]", t.Name, t.Shape, size)
	}
	n := t.Shape[0]
	if n > maxRows {
		return nil, 0, &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%d rows; at most %d per request", n, maxRows)}
	}
	read := oip.ReadFP32
	if t.Datatype == "FP64" {
		read = oip.ReadFP64
	}
	x, err := read(make([]float32, 0, n*size), t.binary, n*size)
	if err == nil {
		err = oip.CheckUnit(x)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("input %q: %v", t.Name, err)
	}
	return x, n, nil
}

// v2BinaryImages reads a BYTES [N] or [N,1] tensor of encoded images sent as binary data.
func (s *Server) v2BinaryImages(ctx context.Context, t v2Tensor, in model.Input, maxRows int) ([]float32, int, []bool, error) {
	if len(t.Shape) < 1 || len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[1] != 1) || t.Shape[0] < 1 {
		return nil, 0, nil, fmt.Errorf("input %q has shape %v; want [N] or [N,1]", t.Name, t.Shape)
	}
	if t.Shape[0] > maxRows {
		return nil, 0, nil, &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%d images; at most %d per request", t.Shape[0], maxRows)}
	}
	items, err := oip.SplitBytes(t.binary, t.Shape[0])
	if err != nil {
		return nil, 0, nil, fmt.Errorf("input %q: %v", t.Name, err)
	}
	return s.prepareImages(ctx, items, in)
}

// binaryOutputs says, output by output, whether the request asks for it as binary data: on the output itself, else
// for every output through the request's binary_data_output.
func binaryOutputs(req *v2InferRequest, outputs []v2OutputTensor) []bool {
	all := req.Parameters["binary_data_output"] == true
	out := make([]bool, len(outputs))
	for i, o := range outputs {
		out[i] = all
		for _, ro := range req.Outputs {
			if v, ok := ro.Parameters["binary_data"]; ok && ro.Name == o.Name {
				out[i] = v == true
			}
		}
	}
	return out
}

// writeV2Infer answers resp, with each output the request asked for as binary data after the JSON header: FP32
// little-endian, BOOL one byte each, BYTES with a 4-byte little-endian length before each element.
func writeV2Infer(w http.ResponseWriter, req *v2InferRequest, resp v2InferResponse) {
	binary := binaryOutputs(req, resp.Outputs)
	var data []byte
	for i := range resp.Outputs {
		if !binary[i] {
			continue
		}
		o := &resp.Outputs[i]
		start := len(data)
		switch v := o.Data.(type) {
		case []float32:
			data = oip.AppendFP32(data, v)
		case []bool:
			for _, b := range v {
				data = append(data, map[bool]byte{false: 0, true: 1}[b])
			}
		case []string:
			for _, item := range v {
				data = oip.AppendBytes(data, []byte(item))
			}
		}
		o.Data = nil
		o.Parameters = map[string]any{"binary_data_size": len(data) - start}
	}
	if !slices.Contains(binary, true) {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	header, err := json.Marshal(resp)
	if err != nil {
		v2Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(binaryHeader, strconv.Itoa(len(header)))
	w.Header().Set("Content-Length", strconv.Itoa(len(header)+len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(header)
	w.Write(data)
}

// handleV2ServerMetadata answers GET /v2: the server's name, version and the protocol extensions it supports.
func (s *Server) handleV2ServerMetadata() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": oip.ServerName, "version": s.cfg.Version, "extensions": oip.Extensions()})
	}
}
