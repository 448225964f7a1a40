package onnx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// The names and versions Export writes. Opset 13 and IR version 7 are read by every ONNX Runtime since 1.6 and by
// the onnx checker since 1.8.
const (
	ExportOpset  = 13
	exportIR     = 7
	InputName    = "input"
	OutputName   = "probabilities"
	producerName = "perceptron"
)

// Export writes net as an ONNX model: one Gemm per layer (transB=0, alpha=beta=1, so the weights are stored exactly
// as perceptron holds them), the hidden activation after each hidden layer, a Mul by the inverse of a calibrated
// model's temperature, and Softmax over the classes. The
// input "input" is [N, inputs] float32 with a symbolic batch size N and the output "probabilities" [N, classes].
// metadata_props carry the labels, the preprocessing, the image size and the whole header, so Import gives back
// the same network. A model with a gate has a second output, "not_a_digit" [N] (see exportGate).
func Export(net *model.Network) ([]byte, error) {
	if err := net.Validate(); err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	header, err := json.Marshal(net.Info)
	if err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	labels, _ := json.Marshal(net.Labels)

	g := &onnxpb.GraphProto{
		Name:   ptr(net.Name),
		Input:  []*onnxpb.ValueInfoProto{valueInfo(InputName, net.MLP.Inputs())},
		Output: []*onnxpb.ValueInfoProto{valueInfo(OutputName, net.MLP.Classes())},
	}
	x := InputName
	last := len(net.MLP.Layers) - 1
	for i, l := range net.MLP.Layers {
		w, b := fmt.Sprintf("layer%d.weight", i), fmt.Sprintf("layer%d.bias", i)
		g.Initializer = append(g.Initializer, tensor(w, []int64{int64(l.In), int64(l.Out)}, l.W), tensor(b, []int64{int64(l.Out)}, l.B))
		y := fmt.Sprintf("layer%d", i)
		if i == last {
			y = "logits"
		}
		g.Node = append(g.Node, &onnxpb.NodeProto{
			Name: ptr(fmt.Sprintf("gemm%d", i)), OpType: ptr("Gemm"), Input: []string{x, w, b}, Output: []string{y},
		})
		x = y
		if i < last {
			op := opName(net.Activation)
			y = fmt.Sprintf("layer%d.%s", i, net.Activation)
			g.Node = append(g.Node, &onnxpb.NodeProto{
				Name: ptr(fmt.Sprintf("%s%d", net.Activation, i)), OpType: ptr(op), Input: []string{x}, Output: []string{y},
			})
			x = y
		}
	}
	if t := net.Temperature(); t != 1 {
		// A calibrated model's scores are divided by its temperature before the softmax; perceptron multiplies by
		// the float32 inverse, and so does this node, for the same bits.
		g.Initializer = append(g.Initializer, tensor("temperature.inverse", []int64{}, []float32{float32(1 / t)}))
		g.Node = append(g.Node, &onnxpb.NodeProto{
			Name: ptr("temperature"), OpType: ptr("Mul"), Input: []string{x, "temperature.inverse"}, Output: []string{"scaled_logits"},
		})
		x = "scaled_logits"
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{
		Name: ptr("softmax"), OpType: ptr("Softmax"), Input: []string{x}, Output: []string{OutputName},
		Attribute: []*onnxpb.AttributeProto{{Name: ptr("axis"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(1))}},
	})
	if net.Gate != nil && net.GateMLP != nil {
		exportGate(g, net)
	}

	m := &onnxpb.ModelProto{
		IrVersion:       ptr(int64(exportIR)),
		ProducerName:    ptr(producerName),
		ProducerVersion: ptr(strconv.Itoa(model.FormatVersion)),
		ModelVersion:    ptr(int64(1)),
		DocString:       ptr(fmt.Sprintf("perceptron model %s version %s", net.Name, net.Version)),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(int64(ExportOpset))}},
		Graph:           g,
		MetadataProps: []*onnxpb.StringStringEntryProto{
			{Key: ptr(keyLabels), Value: ptr(string(labels))},
			{Key: ptr(keyPreprocess), Value: ptr(string(net.Input.Preprocess))},
			{Key: ptr(keyInputWidth), Value: ptr(strconv.Itoa(net.Input.Width))},
			{Key: ptr(keyInputHeight), Value: ptr(strconv.Itoa(net.Input.Height))},
			{Key: ptr(keyInfo), Value: ptr(string(header))},
		},
	}
	if net.Input.ChannelCount() == 3 {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(keyInputChannels), Value: ptr("3")})
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// valueInfo describes a float32 [N, n] tensor with a symbolic batch size.
func valueInfo(name string, n int) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: ptr(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: ptr(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(n)}},
			}},
		}}},
	}
}

// tensor is a float32 initializer with its values in raw_data, little-endian, as exporters write them.
func tensor(name string, dims []int64, values []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: ptr(name), Dims: dims, DataType: ptr(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
}
