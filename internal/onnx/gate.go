package onnx

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// A model with a gate (model.Gate) is exported with a second output, GateOutputName: the gate's probability that
// each row is not a digit, [N], computed by its own chain of nodes and initializers, all named with gatePrefix,
// from the same input. Its threshold travels in the header in the metadata (keyInfo). Import splits such a graph
// back into the digit network's chain and the gate's, so the gate is neither dropped nor merged into the classes.
const (
	GateOutputName = "not_a_digit"
	gatePrefix     = "gate."
	gateProbs      = gatePrefix + "probabilities"
)

// exportGate appends the gate's nodes, initializers and output to g.
func exportGate(g *onnxpb.GraphProto, net *model.Network) {
	m := net.GateMLP
	x := InputName
	last := len(m.Layers) - 1
	for i, l := range m.Layers {
		w, b := fmt.Sprintf("%slayer%d.weight", gatePrefix, i), fmt.Sprintf("%slayer%d.bias", gatePrefix, i)
		g.Initializer = append(g.Initializer, tensor(w, []int64{int64(l.In), int64(l.Out)}, l.W), tensor(b, []int64{int64(l.Out)}, l.B))
		y := fmt.Sprintf("%slayer%d", gatePrefix, i)
		g.Node = append(g.Node, &onnxpb.NodeProto{
			Name: ptr(fmt.Sprintf("%sgemm%d", gatePrefix, i)), OpType: ptr("Gemm"), Input: []string{x, w, b}, Output: []string{y},
		})
		x = y
		if i < last {
			y = fmt.Sprintf("%slayer%d.%s", gatePrefix, i, m.Activation)
			g.Node = append(g.Node, &onnxpb.NodeProto{
				Name: ptr(fmt.Sprintf("%s%s%d", gatePrefix, m.Activation, i)), OpType: ptr(opName(m.Activation)), Input: []string{x}, Output: []string{y},
			})
			x = y
		}
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{
		Name: ptr(gatePrefix + "softmax"), OpType: ptr("Softmax"), Input: []string{x}, Output: []string{gateProbs},
		Attribute: []*onnxpb.AttributeProto{{Name: ptr("axis"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(1))}},
	})
	idx := gatePrefix + "not_a_digit.index"
	g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: ptr(idx), DataType: ptr(int32(onnxpb.TensorProto_INT64)),
		Int64Data: []int64{model.GateNotDigit}})
	g.Node = append(g.Node, &onnxpb.NodeProto{
		Name: ptr(gatePrefix + "not_a_digit"), OpType: ptr("Gather"), Input: []string{gateProbs, idx}, Output: []string{GateOutputName},
		Attribute: []*onnxpb.AttributeProto{{Name: ptr("axis"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(1))}},
	})
	g.Output = append(g.Output, &onnxpb.ValueInfoProto{
		Name: ptr(GateOutputName),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: ptr(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
			}},
		}}},
	})
}

// splitGate separates a graph with the outputs probabilities and not_a_digit, as exportGate writes it, into the
// digit network's graph and the gate's (which ends at the gate's softmax). A graph without a not_a_digit output is
// returned as it is, with a nil gate.
func splitGate(g *onnxpb.GraphProto) (digits, gate *onnxpb.GraphProto, err error) {
	outs := g.GetOutput()
	if len(outs) != 2 || outs[1].GetName() != GateOutputName {
		return g, nil, nil
	}
	digits = &onnxpb.GraphProto{Name: g.Name, Input: g.GetInput(), Output: outs[:1]}
	gate = &onnxpb.GraphProto{Name: g.Name, Input: g.GetInput(), Output: []*onnxpb.ValueInfoProto{valueInfo(gateProbs, 2)}}
	for _, t := range g.GetInitializer() {
		if strings.HasPrefix(t.GetName(), gatePrefix) {
			gate.Initializer = append(gate.Initializer, t)
		} else {
			digits.Initializer = append(digits.Initializer, t)
		}
	}
	var last *onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if strings.HasPrefix(n.GetName(), gatePrefix) {
			gate.Node = append(gate.Node, n)
			last = n
		} else {
			digits.Node = append(digits.Node, n)
		}
	}
	// The gate's chain ends with the Gather of the "not a digit" column, which the importer does not read: the gate
	// is served from its probabilities, as perceptron computes them.
	if last == nil || last.GetOpType() != "Gather" || len(last.GetOutput()) != 1 || last.GetOutput()[0] != GateOutputName ||
		len(last.GetInput()) != 2 || last.GetInput()[0] != gateProbs {
		return nil, nil, unsupported("the graph's output %s is not the gate's Gather of %s", quote(GateOutputName), quote(gateProbs))
	}
	gate.Node = gate.Node[:len(gate.Node)-1]
	return digits, gate, nil
}

// importGate gives net the gate read from graph, with the threshold the file's saved header gives it.
func importGate(m *onnxpb.ModelProto, graph *onnxpb.GraphProto, opset int64, net *model.Network) error {
	gg, err := readGraph(graph, opset)
	if err != nil {
		return err
	}
	var saved model.Info
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == keyInfo {
			if err := json.Unmarshal([]byte(p.GetValue()), &saved); err != nil {
				return malformed("metadata %s: %v", keyInfo, err)
			}
		}
	}
	if saved.Gate == nil {
		return unsupported("the graph has a %s output but its metadata no gate threshold", quote(GateOutputName))
	}
	if gg.output != outputSoftmax || gg.temperature != 1 || gg.activation == 0 {
		return unsupported("the %s output is not a softmax of a gate network with a hidden layer", quote(GateOutputName))
	}
	sizes := []int{gg.layers[0].in}
	for _, l := range gg.layers {
		sizes = append(sizes, l.out)
	}
	if err := model.CheckArchitecture(sizes); err != nil {
		return unsupported("gate: %v", err)
	}
	mlp := model.NewMLP[float32](sizes, gg.activation)
	for i, l := range gg.layers {
		copy(mlp.Layers[i].W, l.w)
		copy(mlp.Layers[i].B, l.b)
	}
	g := *saved.Gate
	created := net.Created
	net.SetGate(&g, mlp)
	net.Created = created
	if err := net.Validate(); err != nil {
		return unsupported("%v", err)
	}
	return nil
}
