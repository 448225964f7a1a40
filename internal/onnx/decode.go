package onnx

import (
	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// recursionLimit bounds message nesting while decoding. An MLP's graph nests a few levels (model, graph, node,
// attribute, tensor); subgraphs in attributes add more, and nothing the importer accepts comes near 32.
const recursionLimit = 32

// decode parses the protobuf after checking the size. The protobuf library checks every length against the bytes
// that remain, so a truncated file or one that declares a huge field fails without allocating for the declared size;
// what it allocates is bounded by the file's size.
func decode(data []byte, limit int64) (*onnxpb.ModelProto, error) {
	if int64(len(data)) > limit {
		return nil, tooLarge("the file is larger than the %d-byte limit", limit)
	}
	if len(data) == 0 {
		return nil, malformed("the file is empty")
	}
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{RecursionLimit: recursionLimit}).Unmarshal(data, &m); err != nil {
		return nil, malformed("not an ONNX model: cannot decode the protobuf (truncated or not ONNX): %v", err)
	}
	if m.Graph == nil {
		return nil, malformed("not an ONNX model: no graph")
	}
	return &m, nil
}

// checkModel checks what applies to the whole file and returns the version of the default operator set.
func checkModel(m *onnxpb.ModelProto) (int64, error) {
	if m.GetIrVersion() < 3 {
		return 0, malformed("not an ONNX model: ir_version %d (want 3 or later)", m.GetIrVersion())
	}
	opset := int64(-1)
	for _, o := range m.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			if opset >= 0 {
				return 0, malformed("the default operator set is imported twice")
			}
			opset = o.GetVersion()
		}
	}
	switch {
	case opset < 0:
		return 0, malformed("no opset_import for the default ONNX domain")
	case opset < MinOpset || opset > MaxOpset:
		return 0, unsupported("opset %d: perceptron imports opsets %d to %d (re-export with opset_version=17, for instance)",
			opset, MinOpset, MaxOpset)
	}
	g := m.GetGraph()
	if len(g.GetSparseInitializer()) > 0 {
		return 0, unsupported("sparse initializers (%s) are not supported", quote(g.GetSparseInitializer()[0].GetValues().GetName()))
	}
	for _, t := range g.GetInitializer() {
		if err := checkStorage(t); err != nil {
			return 0, err
		}
	}
	for _, n := range g.GetNode() {
		for _, a := range n.GetAttribute() {
			if t := a.GetT(); t != nil {
				if err := checkStorage(t); err != nil {
					return 0, err
				}
			}
		}
	}
	return opset, nil
}

// checkStorage refuses a tensor whose values are not in the file.
func checkStorage(t *onnxpb.TensorProto) error {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return unsupported("tensor %s keeps its data in an external file; perceptron imports self-contained files only "+
			"(save with onnx.save_model(model, path, save_as_external_data=False))", quote(t.GetName()))
	}
	if t.GetSegment() != nil {
		return unsupported("tensor %s is a segment of a larger tensor, which is not supported", quote(t.GetName()))
	}
	return nil
}
