// Package oip holds the facts of the Open Inference Protocol (KServe v2) that the REST routes (internal/api) and the
// gRPC service (internal/grpcapi) share: the server's name and extensions, a model's metadata as this server really
// takes its inputs, and the protocol's raw tensor layout (little-endian FP32, length-prefixed BYTES) in both
// directions. It knows nothing of HTTP or gRPC; oippb holds the generated gRPC messages.
package oip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// ServerName is the name the server metadata reports.
const ServerName = "perceptron"

// Extensions are the protocol extensions the server supports, as the server metadata lists them.
func Extensions() []string { return []string{"binary_tensor_data"} }

// Tensor and platform names of every model this server serves.
const (
	Platform = "perceptron_mlp"
	// InputName is the model's one input. It takes FP32 (or FP64) rows of preprocessed pixels, or BYTES of encoded
	// images.
	InputName = "input"
	// ImageName is accepted as another name of the input when it holds BYTES, for clients that name it by what it
	// carries.
	ImageName = "image"
	// OutputName is the model's one output: the class probabilities of each row.
	OutputName = "probabilities"
)

// TensorMeta describes one input or output of a model.
type TensorMeta struct {
	Name       string            `json:"name"`
	Datatype   string            `json:"datatype"`
	Shape      []int64           `json:"shape"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// ModelMeta is a model's metadata as the protocol's model metadata answer carries it.
type ModelMeta struct {
	Name     string       `json:"name"`
	Versions []string     `json:"versions"`
	Platform string       `json:"platform"`
	Inputs   []TensorMeta `json:"inputs"`
	Outputs  []TensorMeta `json:"outputs"`
}

// Metadata describes net. It lists the one input the model has, with its FP32 form (the protocol's shape can hold
// one datatype per tensor), and states in the input's parameters how the same input is sent as encoded images
// instead, since a client cannot learn that from the datatype alone.
func Metadata(net *model.Network) ModelMeta {
	return ModelMeta{
		Name:     net.Name,
		Versions: []string{net.Version},
		Platform: Platform,
		Inputs: []TensorMeta{{
			Name: InputName, Datatype: "FP32", Shape: []int64{-1, int64(net.MLP.Inputs())},
			Parameters: map[string]string{
				"value_range": valueRange(net.Input),
				"bytes_alternative": "datatype BYTES, shape [-1] or [-1,1], named " + InputName + " or " + ImageName +
					": one encoded image (PNG, JPEG, GIF, BMP, TIFF or WebP) per element, preprocessed by the server; " +
					"in JSON each element is a base64 string, in binary tensor data and gRPC the raw bytes",
			},
		}},
		Outputs: []TensorMeta{{Name: OutputName, Datatype: "FP32", Shape: []int64{-1, int64(net.MLP.Classes())}}},
	}
}

// valueRange says what the FP32 values of an input mean and how they are laid out.
func valueRange(in model.Input) string {
	if in.ChannelCount() == 3 {
		return fmt.Sprintf("0..1, colour: %dx%d red values row-major, then green, then blue (CHW)", in.Width, in.Height)
	}
	return fmt.Sprintf("0..1 (0 background, 1 ink), row-major %dx%d", in.Width, in.Height)
}

// ErrLayout reports raw tensor bytes that do not fit the tensor's shape and datatype.
var ErrLayout = errors.New("raw tensor data does not fit its shape")

// ReadFP32 appends the count little-endian FP32 values in b to dst.
func ReadFP32(dst []float32, b []byte, count int) ([]float32, error) {
	if len(b) != 4*count {
		return dst, fmt.Errorf("%w: %d bytes for %d FP32 values (%d bytes)", ErrLayout, len(b), count, 4*count)
	}
	for i := 0; i < len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst, nil
}

// ReadFP64 appends the count little-endian FP64 values in b to dst, as FP32.
func ReadFP64(dst []float32, b []byte, count int) ([]float32, error) {
	if len(b) != 8*count {
		return dst, fmt.Errorf("%w: %d bytes for %d FP64 values (%d bytes)", ErrLayout, len(b), count, 8*count)
	}
	for i := 0; i < len(b); i += 8 {
		dst = append(dst, float32(math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))))
	}
	return dst, nil
}

// AppendFP32 appends v to dst as little-endian FP32 values.
func AppendFP32(dst []byte, v []float32) []byte {
	for _, f := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}

// SplitBytes splits a raw BYTES tensor (each element a 4-byte little-endian length, then that many bytes) into its
// count elements, which alias b. A length that runs past the end, or bytes left over, is an error.
func SplitBytes(b []byte, count int) ([][]byte, error) {
	items := make([][]byte, 0, min(count, len(b)/4))
	for i := 0; i < count; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: BYTES element %d has no 4-byte length prefix (%d bytes left)", ErrLayout, i, len(b))
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: BYTES element %d says %d bytes but %d are left in the tensor", ErrLayout, i, n, len(b))
		}
		items = append(items, b[:n:n])
		b = b[n:]
	}
	if len(b) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the %d BYTES elements of the shape", ErrLayout, len(b), count)
	}
	return items, nil
}

// AppendBytes appends item to dst as one raw BYTES element.
func AppendBytes(dst, item []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(item)))
	return append(dst, item...)
}

// CheckUnit reports the first value of x outside 0..1 (NaN included): the model's inputs are pixel intensities.
func CheckUnit(x []float32) error {
	for i, v := range x {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("value %d is %v, outside 0..1", i, v)
		}
	}
	return nil
}
