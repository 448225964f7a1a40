package grpcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/oip"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
)

// restV2 posts body to the REST /v2 inference route of k's API server and decodes the answer's outputs by name.
func restV2(t *testing.T, k *kit, body any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v2/models/"+k.net.Name+"/infer", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	k.rest.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("REST /v2 infer: got %d %s; want 200", w.Code, w.Body)
	}
	var resp struct {
		Outputs []struct {
			Name string          `json:"name"`
			Data json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, o := range resp.Outputs {
		out[o.Name] = o.Data
	}
	return out
}

// The gRPC service speaks the same protocol as the REST /v2 routes, so a client gets the same honest answer
// (accepted, reason, min_confidence) whichever transport it uses.
func TestModelInferGivesTheHonestAnswerTheRESTRoutesGive(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	// Two real digits and a blank row: the blank one has no digit in it.
	x := append(digits(t, 2), make([]float32, 784)...)
	for _, mc := range []float64{-1, 0, 0.9, 1} {
		name := "with the model's own threshold"
		if mc >= 0 {
			name = fmt.Sprintf("with min_confidence %v", mc)
		}
		t.Run(name, func(t *testing.T) {
			req := fp32Request(k.net.Name, x, 3, false)
			req.Outputs = []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "accepted"}, {Name: "reason"}, {Name: "probabilities"}}
			restBody := map[string]any{
				"inputs":  []any{map[string]any{"name": "input", "shape": []int{3, 784}, "datatype": "FP32", "data": x}},
				"outputs": []any{map[string]string{"name": "accepted"}, map[string]string{"name": "reason"}},
			}
			if mc >= 0 {
				req.Parameters = map[string]*oippb.InferParameter{"min_confidence": {ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: mc}}}
				restBody["parameters"] = map[string]any{"min_confidence": mc}
			}
			resp, err := k.client.ModelInfer(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range resp.Outputs {
				names = append(names, o.Name)
			}
			if want := []string{"accepted", "reason", "probabilities"}; !slices.Equal(names, want) {
				t.Fatalf("got outputs %v; want %v, in the order asked", names, want)
			}
			acc, reason := resp.Outputs[0], resp.Outputs[1]
			if acc.Datatype != "BOOL" || !slices.Equal(acc.Shape, []int64{3}) || reason.Datatype != "BYTES" || !slices.Equal(reason.Shape, []int64{3}) {
				t.Fatalf("got accepted %s %v and reason %s %v; want BOOL [3] and BYTES [3]", acc.Datatype, acc.Shape, reason.Datatype, reason.Shape)
			}
			var reasons []string
			for _, r := range reason.Contents.GetBytesContents() {
				reasons = append(reasons, string(r))
			}
			rest := restV2(t, k, restBody)
			var wantAcc []bool
			var wantReasons []string
			if err := json.Unmarshal(rest["accepted"], &wantAcc); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(rest["reason"], &wantReasons); err != nil {
				t.Fatal(err)
			}
			if got := acc.Contents.GetBoolContents(); !slices.Equal(got, wantAcc) || !slices.Equal(reasons, wantReasons) {
				t.Fatalf("got accepted %v, reason %q; want %v, %q as REST answers", got, reasons, wantAcc, wantReasons)
			}
			if reasons[2] != "no_digit_found" {
				t.Fatalf("got reason %q for the blank row; want no_digit_found", reasons[2])
			}
		})
	}
}

func TestModelInferRefusesAnUnusableMinConfidence(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	for name, p := range map[string]*oippb.InferParameter{
		"above one":   {ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: 2}},
		"below zero":  {ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: -0.5}},
		"NaN":         {ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: math.NaN()}},
		"a string":    {ParameterChoice: &oippb.InferParameter_StringParam{StringParam: "0.9"}},
		"a boolean":   {ParameterChoice: &oippb.InferParameter_BoolParam{BoolParam: true}},
		"a large int": {ParameterChoice: &oippb.InferParameter_Int64Param{Int64Param: 7}},
		"unset":       {},
	} {
		t.Run(name, func(t *testing.T) {
			req := fp32Request(k.net.Name, digits(t, 1), 1, false)
			req.Parameters = map[string]*oippb.InferParameter{"min_confidence": p}
			_, err := k.client.ModelInfer(context.Background(), req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v; want InvalidArgument", err)
			}
		})
	}
}

func TestModelMetadataListsTheOutputsInferenceAnswers(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	resp, err := k.client.ModelMetadata(context.Background(), &oippb.ModelMetadataRequest{Name: k.net.Name})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v2/models/"+k.net.Name, nil)
	w := httptest.NewRecorder()
	k.rest.ServeHTTP(w, r)
	var rest struct {
		Outputs []struct {
			Name     string  `json:"name"`
			Datatype string  `json:"datatype"`
			Shape    []int64 `json:"shape"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rest); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, o := range resp.Outputs {
		got = append(got, fmt.Sprint(o.Name, o.Datatype, o.Shape))
	}
	for _, o := range rest.Outputs {
		want = append(want, fmt.Sprint(o.Name, o.Datatype, o.Shape))
	}
	if len(want) < 3 || !slices.Equal(got, want) {
		t.Fatalf("got outputs %v; want %v as REST lists them", got, want)
	}
}

// With raw input the honest outputs come back raw too, in the order asked, and say what the typed ones say.
func TestModelInferAnswersTheHonestOutputsRawWhenTheInputWasRaw(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	x := append(digits(t, 1), make([]float32, 784)...)
	ask := []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "reason"}, {Name: "accepted"}}
	typedReq, rawReq := fp32Request(k.net.Name, x, 2, false), fp32Request(k.net.Name, x, 2, true)
	typedReq.Outputs, rawReq.Outputs = ask, ask
	typed, err := k.client.ModelInfer(context.Background(), typedReq)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.client.ModelInfer(context.Background(), rawReq)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.RawOutputContents) != 2 || raw.Outputs[0].Contents != nil || raw.Outputs[1].Contents != nil {
		t.Fatalf("got %d raw outputs and typed contents %v, %v; want 2 raw and no typed", len(raw.RawOutputContents), raw.Outputs[0].Contents, raw.Outputs[1].Contents)
	}
	reasons, err := oip.SplitBytes(raw.RawOutputContents[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := typed.Outputs[0].Contents.GetBytesContents(); !slices.EqualFunc(reasons, want, bytes.Equal) {
		t.Fatalf("got raw reasons %q; want %q", reasons, want)
	}
	var accepted []bool
	for _, b := range raw.RawOutputContents[1] {
		accepted = append(accepted, b == 1)
	}
	if want := typed.Outputs[1].Contents.GetBoolContents(); !slices.Equal(accepted, want) || string(reasons[1]) != "no_digit_found" {
		t.Fatalf("got raw accepted %v, reasons %q; want %v and no_digit_found for the blank row", accepted, reasons, want)
	}
}

// outcomeCounts reads perceptron_predictions_total of k's registry, by outcome.
func outcomeCounts(t *testing.T, k *kit) map[string]float64 {
	t.Helper()
	mfs, err := k.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "perceptron_predictions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// A gRPC answer is counted in perceptron_predictions_total as the same request over REST /v2 is: a blank row as
// no_digit_found, the others at the request's min_confidence.
func TestModelInferCountsOutcomesAsTheRESTRoutesDo(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	x := append(digits(t, 4), make([]float32, 784)...)
	for _, mc := range []float64{-1, 0, 1} {
		name := "with the model's own threshold"
		if mc >= 0 {
			name = fmt.Sprintf("with min_confidence %v", mc)
		}
		t.Run(name, func(t *testing.T) {
			req := fp32Request(k.net.Name, x, 5, false)
			restBody := map[string]any{
				"inputs": []any{map[string]any{"name": "input", "shape": []int{5, 784}, "datatype": "FP32", "data": x}},
			}
			if mc >= 0 {
				req.Parameters = map[string]*oippb.InferParameter{"min_confidence": {ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: mc}}}
				restBody["parameters"] = map[string]any{"min_confidence": mc}
			}
			before := outcomeCounts(t, k)
			if _, err := k.client.ModelInfer(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			mid := outcomeCounts(t, k)
			restV2(t, k, restBody)
			after := outcomeCounts(t, k)
			for _, o := range []string{api.OutcomeAccepted, api.OutcomeLowConfidence, api.OutcomeNotDigit, api.OutcomeNoDigit} {
				if g, r := mid[o]-before[o], after[o]-mid[o]; g != r {
					t.Errorf("gRPC counted %v %s; REST counted %v", g, o, r)
				}
			}
			if got := mid[api.OutcomeNoDigit] - before[api.OutcomeNoDigit]; got != 1 {
				t.Errorf("gRPC counted %v no_digit_found; want 1, the blank row", got)
			}
			if mc == 1 {
				if got := mid[api.OutcomeAccepted] - before[api.OutcomeAccepted]; got != 0 {
					t.Errorf("gRPC counted %v accepted at min_confidence 1; want 0", got)
				}
			}
		})
	}
}
