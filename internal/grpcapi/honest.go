package grpcapi

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
)

// The outputs beside the probabilities carry the honest answer of the REST routes: whether each answer can be
// taken as it is, and if not why. They are answered only when a request names them.
const (
	acceptedName = "accepted"
	reasonName   = "reason"
)

// outputsMeta lists every output ModelInfer answers, as the REST model metadata lists them.
func outputsMeta(net *model.Network) []oip.TensorMeta {
	return append(oip.Metadata(net).Outputs,
		oip.TensorMeta{Name: acceptedName, Datatype: "BOOL", Shape: []int64{-1}},
		oip.TensorMeta{Name: reasonName, Datatype: "BYTES", Shape: []int64{-1}})
}

// minConfidence reads the request parameter min_confidence, a number in 0..1 (double, or the integers 0 and 1 as
// clients that type parameters by value send them); ok is false when it is absent.
func minConfidence(params map[string]*oippb.InferParameter) (v float64, ok bool, err error) {
	p, given := params["min_confidence"]
	if !given {
		return 0, false, nil
	}
	switch c := p.GetParameterChoice().(type) {
	case *oippb.InferParameter_DoubleParam:
		v, ok = c.DoubleParam, true
	case *oippb.InferParameter_Int64Param:
		v, ok = float64(c.Int64Param), true
	case *oippb.InferParameter_Uint64Param:
		v, ok = float64(c.Uint64Param), true
	}
	if !ok || !(v >= 0 && v <= 1) {
		return 0, false, status.Error(codes.InvalidArgument, "parameter min_confidence must be a number from 0 to 1")
	}
	return v, true, nil
}

// blankRows marks the rows of x that are all zeros. For a model with the mnist preprocessing that is the vector of
// an image without a digit, whichever way it arrived (preprocessing gives zeros exactly when it finds no ink), as the
// REST routes decide; other preprocessing has no notion of ink, so nothing is marked. Nil when no row is blank.
func blankRows(net *model.Network, x []float32, n int) []bool {
	if net.Input.Preprocess != model.PreprocessMNIST {
		return nil
	}
	size := len(x) / max(n, 1)
	var blank []bool
	for i := range n {
		if !isZero(x[i*size : (i+1)*size]) {
			continue
		}
		if blank == nil {
			blank = make([]bool, n)
		}
		blank[i] = true
	}
	return blank
}

func isZero(row []float32) bool {
	for _, v := range row {
		if v != 0 {
			return false
		}
	}
	return true
}

// verdicts decides each row's answer by the REST routes' rule (api.RowOutcome); reasons[i] is "" for an accepted
// answer.
func verdicts(res inference.Result, n int, noDigit []bool, minConfidence float64) (accepted []bool, reasons []string) {
	accepted, reasons = make([]bool, n), make([]string, n)
	for i := range n {
		if o := api.RowOutcome(res, i, noDigit, minConfidence); o == api.OutcomeAccepted {
			accepted[i] = true
		} else {
			reasons[i] = o
		}
	}
	return accepted, reasons
}

// outputs builds the named outputs (probabilities alone when none is named), in the order named, as typed contents
// or, when raw, as raw_output_contents in the same order (BOOL one byte each, BYTES length-prefixed).
func outputs(names []string, res inference.Result, n int, noDigit []bool, minConfidence float64, raw bool) ([]*oippb.ModelInferResponse_InferOutputTensor, [][]byte) {
	if len(names) == 0 {
		names = []string{oip.OutputName}
	}
	var accepted []bool
	var reasons []string
	out := make([]*oippb.ModelInferResponse_InferOutputTensor, 0, len(names))
	var rawOut [][]byte
	for _, name := range names {
		if name != oip.OutputName && accepted == nil {
			accepted, reasons = verdicts(res, n, noDigit, minConfidence)
		}
		t := &oippb.ModelInferResponse_InferOutputTensor{Name: name}
		c := &oippb.InferTensorContents{}
		var b []byte
		switch name {
		case oip.OutputName:
			t.Datatype, t.Shape = "FP32", []int64{int64(n), int64(res.Model.MLP.Classes())}
			c.Fp32Contents = res.Probs
			if raw {
				b = oip.AppendFP32(make([]byte, 0, 4*len(res.Probs)), res.Probs)
			}
		case acceptedName:
			t.Datatype, t.Shape = "BOOL", []int64{int64(n)}
			c.BoolContents = accepted
			if raw {
				b = make([]byte, n)
				for i, a := range accepted {
					if a {
						b[i] = 1
					}
				}
			}
		case reasonName:
			t.Datatype, t.Shape = "BYTES", []int64{int64(n)}
			c.BytesContents = make([][]byte, n)
			for i, r := range reasons {
				c.BytesContents[i] = []byte(r)
				if raw {
					b = oip.AppendBytes(b, c.BytesContents[i])
				}
			}
		default:
			panic(fmt.Sprintf("grpcapi: output %q was not checked", name))
		}
		if raw {
			rawOut = append(rawOut, b)
		} else {
			t.Contents = c
		}
		out = append(out, t)
	}
	return out, rawOut
}
