package onnx

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

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
	return net
}

func TestExportThenImportIsLossless(t *testing.T) {
	def, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, net := range []*model.Network{def, sigmoidNet(t)} {
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
			if model.NewVersion(got.Created, got.MLP.Params) != net.Version {
				t.Error("the version of the imported weights at the original time differs from the original version")
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
	if want := []string{"Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm", "Softmax"}; !slices.Equal(ops, want) {
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
