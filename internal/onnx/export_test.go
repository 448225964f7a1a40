package onnx

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// gatedNet is sigmoidNet with a gate (model.Gate) of random weights.
func gatedNet(t testing.TB) *model.Network {
	net := sigmoidNet(t)
	net.Name = "gated"
	m := model.NewMLP[float32]([]int{144, 6, 2}, model.Tanh)
	m.Init(rand.New(rand.NewPCG(5, 5)))
	net.SetGate(&model.Gate{Threshold: 0.7, HeldOutRejected: 0.003, Digits: 100, NonDigits: 90, Seed: 2}, m)
	return net
}

func sigmoidNet(t testing.TB) *model.Network {
	t.Helper()
	net, err := model.New(model.Info{
		Name: "shapes", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Layers: []int{144, 20, 9, 3},
		Activation: model.Sigmoid, Labels: []string{"circle", "square, filled", "triangle"},
		Input: model.Input{Width: 16, Height: 9, Preprocess: model.PreprocessResize}, Dataset: "ds-1",
		Metrics: model.Metrics{TestAccuracy: 0.5}, Hyperparameters: json.RawMessage(`{"epochs":2}`),
	}, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range net.MLP.Params { // non-zero biases too, so they are checked
		net.MLP.Params[i] += float32(i%7) * 1e-3
	}
	net.Version = model.NewVersion(net.Created, net.MLP.Params)
	net.Calibration = &model.Calibration{Temperature: 2.7, MinConfidence: 0.6, Examples: 40} // a strong one
	return net
}

// colourNet is sigmoidNet with a colour input of 8x6 pixels, 144 values.
func colourNet(t testing.TB) *model.Network {
	net := sigmoidNet(t)
	net.Name = "colours"
	net.Input = model.Input{Width: 8, Height: 6, Preprocess: model.PreprocessResize, Channels: 3}
	return net
}

func TestExportThenImportIsLossless(t *testing.T) {
	def, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, net := range []*model.Network{def, sigmoidNet(t), colourNet(t), gatedNet(t)} {
		t.Run(net.Name, func(t *testing.T) {
			file, err := Export(net)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Export(net)
			if !bytes.Equal(file, again) {
				t.Error("two exports of the same network differ")
			}
			got, err := ImportBytes(file, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.MLP.Params, net.MLP.Params) {
				t.Fatal("weights differ after export and import")
			}
			_, digest, _ := strings.Cut(net.Version, "-")
			if _, d, _ := strings.Cut(got.Version, "-"); d != digest {
				t.Errorf("version %s after import; want the digest %s of %s", got.Version, digest, net.Version)
			}
			if got.Name != net.Name || !slices.Equal(got.Labels, net.Labels) || got.Input != net.Input || got.Activation != net.Activation ||
				got.Dataset != net.Dataset || got.Metrics != net.Metrics || !bytes.Equal(got.Hyperparameters, net.Hyperparameters) {
				t.Errorf("header after round trip:\n got %+v\nwant %+v", got.Info, net.Info)
			}
			if got.Parent != net.Version || got.Origin.Version != net.Version || got.Origin.Producer != "perceptron" || got.Origin.Opset != ExportOpset {
				t.Errorf("parent %q origin %+v; want both to name %s, produced by perceptron at opset %d", got.Parent, got.Origin, net.Version, ExportOpset)
			}
			got.Created = net.Created
			if model.NewVersion(got.Created, got.VersionDigest()) != net.Version {
				t.Error("the version of the imported weights at the original time differs from the original version")
			}
			// The calibration comes back, and so the probabilities are the same bits.
			if !reflect.DeepEqual(got.Calibration, net.Calibration) {
				t.Errorf("calibration after round trip %+v; want %+v", got.Calibration, net.Calibration)
			}
			x := make([]float32, 3*net.MLP.Inputs())
			for i := range x {
				x[i] = float32(i%7) / 7
			}
			want := net.Forward(x, 3, &model.Workspace[float32]{})
			if p := got.Forward(x, 3, &model.Workspace[float32]{}); !slices.Equal(p, want) {
				t.Errorf("probabilities after round trip %v; want %v", p[:5], want[:5])
			}
			// The gate comes back with its threshold, and so its scores are the same bits.
			if !reflect.DeepEqual(got.Gate, net.Gate) {
				t.Errorf("gate after round trip %+v; want %+v", got.Gate, net.Gate)
			}
			wantGate := net.NotDigitScores(nil, x, 3, &model.Workspace[float32]{})
			if g := got.NotDigitScores(nil, x, 3, &model.Workspace[float32]{}); !slices.Equal(g, wantGate) {
				t.Errorf("gate scores after round trip %v; want %v", g, wantGate)
			}
		})
	}
}

func TestExportWritesTheDocumentedGraph(t *testing.T) {
	file, err := Export(sigmoidNet(t))
	if err != nil {
		t.Fatal(err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	g := m.GetGraph()
	var ops []string
	for _, n := range g.GetNode() {
		ops = append(ops, n.GetOpType())
	}
	// The network is calibrated: its scores are multiplied by the inverse of its temperature before the softmax.
	if want := []string{"Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm", "Mul", "Softmax"}; !slices.Equal(ops, want) {
		t.Errorf("operators %v; want %v", ops, want)
	}
	in, out := g.GetInput()[0], g.GetOutput()[0]
	inDims := in.GetType().GetTensorType().GetShape().GetDim()
	if len(g.GetInput()) != 1 || in.GetName() != "input" || len(inDims) != 2 || inDims[0].GetDimParam() != "N" || inDims[1].GetDimValue() != 144 ||
		in.GetType().GetTensorType().GetElemType() != int32(onnxpb.TensorProto_FLOAT) {
		t.Errorf("input %v; want one float32 \"input\" [N,144]", in)
	}
	if outDims := out.GetType().GetTensorType().GetShape().GetDim(); out.GetName() != "probabilities" || outDims[1].GetDimValue() != 3 {
		t.Errorf("output %v; want \"probabilities\" [N,3]", out)
	}
	meta := map[string]string{}
	for _, p := range m.GetMetadataProps() {
		meta[p.GetKey()] = p.GetValue()
	}
	if meta[keyLabels] != `["circle","square, filled","triangle"]` || meta[keyPreprocess] != "resize" ||
		meta[keyInputWidth] != "16" || meta[keyInputHeight] != "9" || !strings.Contains(meta[keyInfo], `"name":"shapes"`) {
		t.Errorf("metadata_props %v", meta)
	}
	if m.GetOpsetImport()[0].GetVersion() != ExportOpset || m.GetIrVersion() != exportIR {
		t.Errorf("opset %v IR %d; want %d and %d", m.GetOpsetImport(), m.GetIrVersion(), ExportOpset, exportIR)
	}
}

// TestImportReadsATemperature: scores divided (or multiplied) by a scalar before the softmax are a temperature,
// which the imported network applies as perceptron applies a calibrated model's.
func TestImportReadsATemperature(t *testing.T) {
	for _, tc := range []struct {
		op    string
		value float32
		want  float64
	}{{"Div", 2.5, 2.5}, {"Mul", 0.5, 2}} {
		t.Run(tc.op, func(t *testing.T) {
			file := onnxtest.New(13, "x", -1, 4).
				Init(onnxtest.Float32("w", []int64{4, 2}, []float32{1, -1, 2, 0, 0, 3, -2, 1})).
				Init(onnxtest.Float32("t", []int64{}, []float32{tc.value})).
				Node("mm", "MatMul", []string{"x", "w"}, []string{"h"}).
				Node("temp", tc.op, []string{"h", "t"}, []string{"s"}).
				Node("sm", "Softmax", []string{"s"}, []string{"y"}).Output("y").Bytes()
			net, err := ImportBytes(file, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if net.Calibration == nil || net.Calibration.Temperature != tc.want {
				t.Fatalf("calibration %+v; want temperature %v", net.Calibration, tc.want)
			}
			p := net.Forward([]float32{1, 0, 0, 0}, 1, &model.Workspace[float32]{}) // scores 1 and -1
			want := 1 / (1 + math.Exp(-2/tc.want))
			if math.Abs(float64(p[0])-want) > 1e-6 {
				t.Errorf("probability %v; want %v", p[0], want)
			}
		})
	}
}

// TestGateOutputWithoutItsThresholdIsRefused: a not_a_digit output whose threshold the metadata does not give is
// refused, not imported without its gate.
func TestGateOutputWithoutItsThresholdIsRefused(t *testing.T) {
	net := gatedNet(t)
	file, err := Export(net)
	if err != nil {
		t.Fatal(err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	if outs := m.GetGraph().GetOutput(); len(outs) != 2 || outs[1].GetName() != GateOutputName {
		t.Fatalf("outputs %v; want probabilities and %s", outs, GateOutputName)
	}
	plain := net.Info
	plain.Gate = nil
	header, _ := json.Marshal(plain)
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == keyInfo {
			p.Value = ptr(string(header))
		}
	}
	data, _ := proto.Marshal(&m)
	if _, err := ImportBytes(data, Options{}); err == nil || !strings.Contains(err.Error(), "gate threshold") {
		t.Errorf("import without the gate's threshold: %v; want a refusal naming it", err)
	}
}
