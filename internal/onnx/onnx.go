// Package onnx converts between perceptron's networks and ONNX, the interchange format of PyTorch, Keras and the
// serving systems (ONNX Runtime, Triton). Import reads the graphs exporters write for a multilayer perceptron (Gemm
// or MatMul+Add layers, one hidden activation, an optional Softmax or LogSoftmax, Flatten or Reshape at the input)
// into a model.Network, and refuses anything else with an *Error that names the node and the operator or attribute.
// Export writes a network as a Gemm/activation/Softmax graph that Import reads back bit for bit.
//
// The package neither stores nor serves models (packages registry and inference do) and runs no ONNX graph: it
// only recognises the MLP a graph computes. The protobuf types live in the generated package onnxpb.
package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// DefaultMaxBytes is the largest ONNX file Import reads when Options.MaxBytes is zero: twice the float32 weights of
// a 784-1024-1024-10 network is under 16 MiB, and 128 MiB leaves room for float64 files of much wider ones.
const DefaultMaxBytes = 128 << 20

// Opset range the importer knows the operators of: 9 (the oldest PyTorch still writes) to 21.
const (
	MinOpset = 9
	MaxOpset = 21
)

// The kinds of *Error, for errors.Is.
var (
	// ErrMalformed: the bytes are not an ONNX model (truncated, not protobuf, inconsistent tensors).
	ErrMalformed = errors.New("not a valid ONNX model")
	// ErrUnsupported: a valid ONNX model that is not a multilayer perceptron perceptron can serve.
	ErrUnsupported = errors.New("unsupported ONNX model")
	// ErrTooLarge: the file, or a tensor it declares, is over a limit.
	ErrTooLarge = errors.New("ONNX model too large")
)

// Error explains why a file cannot be imported. Node and Op name the graph node concerned, when there is one.
type Error struct {
	Kind   error // ErrMalformed, ErrUnsupported or ErrTooLarge
	Node   string
	Op     string
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		fmt.Fprintf(&b, "node %s (%s): ", e.Node, e.Op)
	}
	b.WriteString(e.Detail)
	return b.String()
}

// Unwrap returns the kind.
func (e *Error) Unwrap() error { return e.Kind }

func malformed(format string, args ...any) *Error {
	return &Error{Kind: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) *Error {
	return &Error{Kind: ErrUnsupported, Detail: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Kind: ErrTooLarge, Detail: fmt.Sprintf(format, args...)}
}

// Options are what the file cannot say, or what the caller wants instead of what it says. Each zero value means:
// take it from the file's metadata when it was exported by perceptron, else use the default given.
type Options struct {
	// Name of the model; default "onnx-mlp".
	Name string
	// Labels of the classes in output order; default "0", "1", ..., one per output.
	Labels []string
	// Preprocess is how images become the input vector; default mnist for a 28x28 input and resize otherwise.
	Preprocess model.Preprocessing
	// InputWidth and InputHeight are the image size the input vector holds; default the last two dimensions of an
	// image-shaped input ([N,1,H,W] or [N,H,W]), or 28x28 for 784 values, or the side of a square.
	InputWidth, InputHeight int
	// InputChannels is 1 for gray or 3 for colour (channel-planar, CHW); default the file's metadata, then 3 for an
	// input shaped [N,3,H,W], then 1.
	InputChannels int
	// Created is the new version's creation time; default now.
	Created time.Time
	// MaxBytes is the largest file accepted; default DefaultMaxBytes.
	MaxBytes int64
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

// Import reads an ONNX file from r (at most Options.MaxBytes) and returns the network it computes, with a new
// version named after its creation time and weights. See ImportBytes.
func Import(r io.Reader, opts Options) (*model.Network, error) {
	limit := opts.maxBytes()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, fmt.Errorf("onnx: read: %w", err)
	}
	return ImportBytes(buf.Bytes(), opts)
}

// ImportBytes converts an ONNX file held in memory. It returns an *Error for any file it will not import: not ONNX,
// over a size limit, external data, an opset outside MinOpset..MaxOpset, or a graph that is not a chain of the
// operators the package documents. The steps, each in its own file: decode the protobuf (decode.go), read the
// layers off the graph (graph.go, with tensor.go for the weights), then describe the network (describe.go).
func ImportBytes(data []byte, opts Options) (*model.Network, error) {
	m, err := decode(data, opts.maxBytes())
	if err != nil {
		return nil, err
	}
	opset, err := checkModel(m)
	if err != nil {
		return nil, err
	}
	digits, gate, err := splitGate(m.GetGraph())
	if err != nil {
		return nil, err
	}
	g, err := readGraph(digits, opset)
	if err != nil {
		return nil, err
	}
	info, err := describe(m, g, opset, data, opts)
	if err != nil {
		return nil, err
	}
	net, err := assemble(info, g)
	if err != nil || gate == nil {
		return net, err
	}
	if err := importGate(m, gate, opset, net); err != nil {
		return nil, err
	}
	return net, nil
}

// maxTextBytes bounds a name or a label.
const maxTextBytes = 128

// checkText reports why s is not usable as a model name or label: empty, too long, not UTF-8, or with unprintable
// characters or surrounding spaces.
func checkText(s string) error { return model.CheckText(s, maxTextBytes) }

// quote shows a name from the file in a message: quoted, and cut short so a hostile file cannot fill a log line.
func quote(s string) string {
	const n = 64
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.QuoteToASCII(s)
}
