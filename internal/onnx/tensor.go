package onnx

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// shape returns a tensor's dimensions and element count. It refuses negative dimensions and, before anything is
// allocated for it, a tensor declaring more values than a whole network may hold (model.MaxParams): a file cannot
// make the importer reserve memory for data it does not contain.
func shape(t *onnxpb.TensorProto) ([]int, int, error) {
	d := t.GetDims()
	if len(d) > 8 {
		return nil, 0, unsupported("tensor %s has %d dimensions", quote(t.GetName()), len(d))
	}
	dims := make([]int, len(d))
	declared := 1.0 // as a float, so no product of dimensions can overflow
	for i, v := range d {
		if v < 0 {
			return nil, 0, malformed("tensor %s has the negative dimension %d", quote(t.GetName()), v)
		}
		dims[i] = int(v)
		declared *= float64(v)
	}
	if declared > model.MaxParams || slices.ContainsFunc(d, func(v int64) bool { return v > model.MaxParams }) {
		return nil, 0, tooLarge("tensor %s declares dimensions %v: %.0f values (%.1f GiB as float32), more than the %d a network may hold",
			quote(t.GetName()), d, declared, declared*4/(1<<30), model.MaxParams)
	}
	count := 1
	for _, v := range dims {
		count *= v
	}
	return dims, count, nil
}

// floats returns a weight tensor's values as float32 with its dimensions. float32 is taken as is; float64, float16
// and bfloat16 are rounded to the nearest float32 (exact for the 16-bit types). Values may be in raw_data
// (little-endian) or in the typed field, whose length must match the dimensions; NaN and infinities are refused.
func floats(t *onnxpb.TensorProto) ([]float32, []int, error) {
	dims, count, err := shape(t)
	if err != nil {
		return nil, nil, err
	}
	raw := t.GetRawData()
	typ := onnxpb.TensorProto_DataType(t.GetDataType())
	var size, typed int
	switch typ {
	case onnxpb.TensorProto_FLOAT:
		size, typed = 4, len(t.GetFloatData())
	case onnxpb.TensorProto_DOUBLE:
		size, typed = 8, len(t.GetDoubleData())
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		size, typed = 2, len(t.GetInt32Data())
	default:
		return nil, nil, unsupported("tensor %s holds %s values; weights must be float32, float64 or float16",
			quote(t.GetName()), typ)
	}
	if err := checkLength(t, count, size, len(raw), typed); err != nil {
		return nil, nil, err
	}
	var out []float32
	switch {
	case typ == onnxpb.TensorProto_FLOAT && raw == nil:
		out = t.GetFloatData()
	default:
		out = make([]float32, count)
		for i := range out {
			out[i] = element(typ, t, raw, i)
		}
	}
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, malformed("tensor %s: value %d is %v", quote(t.GetName()), i, v)
		}
	}
	return out, dims, nil
}

// element converts value i of a float tensor.
func element(typ onnxpb.TensorProto_DataType, t *onnxpb.TensorProto, raw []byte, i int) float32 {
	switch typ {
	case onnxpb.TensorProto_FLOAT:
		return math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	case onnxpb.TensorProto_DOUBLE:
		if raw == nil {
			return float32(t.GetDoubleData()[i])
		}
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
	}
	var h uint16
	if raw == nil {
		h = uint16(t.GetInt32Data()[i])
	} else {
		h = binary.LittleEndian.Uint16(raw[2*i:])
	}
	if typ == onnxpb.TensorProto_BFLOAT16 {
		return math.Float32frombits(uint32(h) << 16)
	}
	return halfToFloat32(h)
}

// checkLength checks that a tensor holds exactly the values its dimensions declare, in raw_data or in its typed
// field but not both.
func checkLength(t *onnxpb.TensorProto, count, size, raw, typed int) error {
	switch {
	case raw > 0 && typed > 0:
		return malformed("tensor %s has both raw_data and typed values", quote(t.GetName()))
	case raw > 0 && raw != count*size:
		return malformed("tensor %s declares %d values (%d bytes) but raw_data holds %d bytes", quote(t.GetName()), count, count*size, raw)
	case raw == 0 && typed != count:
		return malformed("tensor %s declares %d values but holds %d", quote(t.GetName()), count, typed)
	}
	return nil
}

// halfToFloat32 converts an IEEE 754 half-precision number, exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// ints returns the values of a small integer tensor (a Reshape's target shape).
func ints(t *onnxpb.TensorProto) ([]int64, error) {
	_, count, err := shape(t)
	if err != nil {
		return nil, err
	}
	if typ := onnxpb.TensorProto_DataType(t.GetDataType()); typ != onnxpb.TensorProto_INT64 {
		return nil, unsupported("tensor %s holds %s values; want int64", quote(t.GetName()), typ)
	}
	if count > 8 {
		return nil, unsupported("tensor %s holds %d values; want a shape of at most 8", quote(t.GetName()), count)
	}
	raw := t.GetRawData()
	if err := checkLength(t, count, 8, len(raw), len(t.GetInt64Data())); err != nil {
		return nil, err
	}
	if raw == nil {
		return t.GetInt64Data(), nil
	}
	out := make([]int64, count)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out, nil
}

// boolean returns the value of a one-element boolean tensor (a Dropout's training_mode).
func boolean(t *onnxpb.TensorProto) (bool, error) {
	_, count, err := shape(t)
	if err != nil {
		return false, err
	}
	if typ := onnxpb.TensorProto_DataType(t.GetDataType()); typ != onnxpb.TensorProto_BOOL || count != 1 {
		return false, unsupported("tensor %s: want one boolean", quote(t.GetName()))
	}
	raw := t.GetRawData()
	if err := checkLength(t, count, 1, len(raw), len(t.GetInt32Data())); err != nil {
		return false, err
	}
	if raw != nil {
		return raw[0] != 0, nil
	}
	return t.GetInt32Data()[0] != 0, nil
}
