package onnx

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
)

// spec is a small MLP with weights in PyTorch's layout (W[l] is out x in), each a multiple of 1/1024 so that float16
// and scaled encodings hold it exactly.
type spec struct {
	sizes []int
	act   string // Relu, Sigmoid or Tanh
	w, b  [][]float32
}

func newSpec(seed uint64, act string, sizes ...int) spec {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := spec{sizes: sizes, act: act}
	draw := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.IntN(2049)-1024) / 1024
		}
		return v
	}
	for i := 1; i < len(sizes); i++ {
		s.w = append(s.w, draw(sizes[i-1]*sizes[i]))
		s.b = append(s.b, draw(sizes[i]))
	}
	return s
}

// forward is the reference: float64 arithmetic, softmax at the end.
func (s spec) forward(x []float32) []float64 {
	h := make([]float64, len(x))
	for i, v := range x {
		h[i] = float64(v)
	}
	for l := range s.w {
		in, out := s.sizes[l], s.sizes[l+1]
		y := make([]float64, out)
		for o := range out {
			y[o] = float64(s.b[l][o])
			for i := range in {
				y[o] += float64(s.w[l][o*in+i]) * h[i]
			}
			if l < len(s.w)-1 {
				switch s.act {
				case "Relu":
					y[o] = math.Max(y[o], 0)
				case "Sigmoid":
					y[o] = 1 / (1 + math.Exp(-y[o]))
				case "Tanh":
					y[o] = math.Tanh(y[o])
				}
			}
		}
		h = y
	}
	m, sum := math.Inf(-1), 0.0
	for _, v := range h {
		m = math.Max(m, v)
	}
	for i, v := range h {
		h[i] = math.Exp(v - m)
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}

// transposed returns layer l's weights as in x out.
func (s spec) transposed(l int) []float32 {
	in, out := s.sizes[l], s.sizes[l+1]
	t := make([]float32, in*out)
	for o := range out {
		for i := range in {
			t[i*out+o] = s.w[l][o*in+i]
		}
	}
	return t
}

func dims(a ...int) []int64 {
	d := make([]int64, len(a))
	for i, v := range a {
		d[i] = int64(v)
	}
	return d
}

func name(prefix string, l int) string { return prefix + string(rune('0'+l)) }

// pytorch writes s as torch.onnx.export does for nn.Sequential(Flatten, Linear, act, ..., Linear, Softmax) with a
// [N,1,H,W] input.
func pytorch(s spec, h, w int) []byte { return pytorchColour(s, 1, h, w) }

// pytorchColour is pytorch with an input of c channels, [N,c,H,W].
func pytorchColour(s spec, c, h, w int) []byte {
	m := onnxtest.New(17, "input", -1, int64(c), int64(h), int64(w)).
		Node("/flatten/Flatten", "Flatten", []string{"input"}, []string{"f"}, onnxtest.Int("axis", 1))
	x := "f"
	for l := range s.w {
		m.Init(onnxtest.Float32(name("W", l), dims(s.sizes[l+1], s.sizes[l]), s.w[l])).
			Init(onnxtest.Float32(name("B", l), dims(s.sizes[l+1]), s.b[l])).
			Node(name("/fc", l), "Gemm", []string{x, name("W", l), name("B", l)}, []string{name("g", l)},
				onnxtest.Float("alpha", 1), onnxtest.Float("beta", 1), onnxtest.Int("transB", 1))
		x = name("g", l)
		if l < len(s.w)-1 {
			m.Node(name("/act", l), s.act, []string{x}, []string{name("a", l)})
			x = name("a", l)
		}
	}
	return m.Node("/softmax", "Softmax", []string{x}, []string{"output"}, onnxtest.Int("axis", 1)).Output("output", -1, int64(s.sizes[len(s.sizes)-1])).Bytes()
}

// matmulAdd writes s as MatMul + Add (bias first), logits only, after a Reshape whose shape is a Constant node.
func matmulAdd(s spec) []byte {
	m := onnxtest.New(13, "x", -1, int64(s.sizes[0])).
		Node("shape", "Constant", nil, []string{"shape"}, onnxtest.Tensor("value", onnxtest.Int64("", []int64{2}, []int64{-1, int64(s.sizes[0])}))).
		Node("reshape", "Reshape", []string{"x", "shape"}, []string{"r"})
	x := "r"
	for l := range s.w {
		m.Init(onnxtest.Float32(name("W", l), dims(s.sizes[l], s.sizes[l+1]), s.transposed(l))).
			Init(onnxtest.Float32(name("B", l), dims(1, s.sizes[l+1]), s.b[l])).
			Node(name("mm", l), "MatMul", []string{x, name("W", l)}, []string{name("m", l)}).
			Node(name("add", l), "Add", []string{name("B", l), name("m", l)}, []string{name("y", l)})
		x = name("y", l)
		if l < len(s.w)-1 {
			m.Node(name("act", l), s.act, []string{x}, []string{name("a", l)})
			x = name("a", l)
		}
	}
	return m.Node("id", "Identity", []string{x}, []string{"logits"}).Output("logits", -1, int64(s.sizes[len(s.sizes)-1])).Bytes()
}

// scaledDouble writes s as Gemm with transB=0, alpha=0.5 and beta=2 over float64 tensors in the typed field, ending
// with LogSoftmax.
func scaledDouble(s spec) []byte {
	m := onnxtest.New(11, "x", -1, int64(s.sizes[0]))
	x := "x"
	for l := range s.w {
		w, b := s.transposed(l), s.b[l]
		wd, bd := make([]float64, len(w)), make([]float64, len(b))
		for i, v := range w {
			wd[i] = float64(v) * 2
		}
		for i, v := range b {
			bd[i] = float64(v) / 2
		}
		m.Init(&onnxpb.TensorProto{Name: proto.String(name("W", l)), Dims: dims(s.sizes[l], s.sizes[l+1]),
			DataType: proto.Int32(int32(onnxpb.TensorProto_DOUBLE)), DoubleData: wd}).
			Init(&onnxpb.TensorProto{Name: proto.String(name("B", l)), Dims: dims(s.sizes[l+1]),
				DataType: proto.Int32(int32(onnxpb.TensorProto_DOUBLE)), DoubleData: bd}).
			Node(name("gemm", l), "Gemm", []string{x, name("W", l), name("B", l)}, []string{name("g", l)},
				onnxtest.Float("alpha", 0.5), onnxtest.Float("beta", 2), onnxtest.Int("transA", 0), onnxtest.Int("transB", 0))
		x = name("g", l)
		if l < len(s.w)-1 {
			m.Node(name("act", l), s.act, []string{x}, []string{name("a", l)})
			x = name("a", l)
		}
	}
	return m.Node("logsoftmax", "LogSoftmax", []string{x}, []string{"out"}).Output("out").Bytes()
}

// half writes s in float16 (int32_data for weights, raw_data for biases), opset 9, with Dropout after every
// activation and Softmax's default axis; the initializers are listed as graph inputs, as before IR version 4.
func half(s spec) []byte {
	m := onnxtest.New(9, "x", -1, int64(s.sizes[0]))
	m.M.IrVersion = proto.Int64(3)
	x := "x"
	for l := range s.w {
		w := make([]int32, len(s.w[l]))
		for i, v := range s.w[l] {
			w[i] = int32(toHalf(v))
		}
		raw := make([]byte, 2*len(s.b[l]))
		for i, v := range s.b[l] {
			h := toHalf(v)
			raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		}
		m.Init(&onnxpb.TensorProto{Name: proto.String(name("W", l)), Dims: dims(s.sizes[l+1], s.sizes[l]),
			DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT16)), Int32Data: w}).
			Init(&onnxpb.TensorProto{Name: proto.String(name("B", l)), Dims: dims(s.sizes[l+1]),
				DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT16)), RawData: raw}).
			Input(name("W", l), dims(s.sizes[l+1], s.sizes[l])...).Input(name("B", l), int64(s.sizes[l+1])).
			Node(name("gemm", l), "Gemm", []string{x, name("W", l), name("B", l)}, []string{name("g", l)}, onnxtest.Int("transB", 1))
		x = name("g", l)
		if l < len(s.w)-1 {
			m.Node(name("act", l), s.act, []string{x}, []string{name("a", l)}).
				Node(name("drop", l), "Dropout", []string{name("a", l)}, []string{name("d", l), name("mask", l)}, onnxtest.Float("ratio", 0.5))
			x = name("d", l)
		}
	}
	return m.Node("softmax", "Softmax", []string{x}, []string{"p"}).Output("p").Bytes()
}

// toHalf converts a float32 that float16 holds exactly.
func toHalf(v float32) uint16 {
	if v == 0 {
		return 0
	}
	b := math.Float32bits(v)
	return uint16(b>>16&0x8000 | (b>>23&0xff-127+15)<<10 | b>>13&0x3ff)
}

func TestImportAcceptsWhatExportersWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec       spec
		file       func(spec) []byte
		width      int
		preprocess model.Preprocessing
		opset      int64
	}{
		{"a PyTorch model with Flatten of [N,1,28,28], Gemm transB=1, ReLU and Softmax", newSpec(1, "Relu", 784, 12, 10),
			func(s spec) []byte { return pytorch(s, 28, 28) }, 28, model.PreprocessMNIST, 17},
		{"MatMul and Add with the bias first, after a Reshape by a Constant, tanh, logits only", newSpec(2, "Tanh", 16, 8, 6, 3),
			matmulAdd, 4, model.PreprocessResize, 13},
		{"Gemm with alpha, beta and transB=0 over float64 tensors, sigmoid, LogSoftmax", newSpec(3, "Sigmoid", 25, 7, 4),
			scaledDouble, 5, model.PreprocessResize, 11},
		{"float16 weights, opset 9 Dropout and Softmax, initializers listed as inputs", newSpec(4, "Relu", 9, 5, 5, 2),
			half, 3, model.PreprocessResize, 9},
		{"a single layer, no hidden activation", newSpec(5, "Relu", 36, 4), func(s spec) []byte { return pytorch(s, 6, 6) },
			6, model.PreprocessResize, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net, err := ImportBytes(tc.file(tc.spec), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := net.Layers; !equalInts(got, tc.spec.sizes) {
				t.Fatalf("layers = %v; want %v", got, tc.spec.sizes)
			}
			if len(tc.spec.sizes) > 2 && net.Activation.String() != strings.ToLower(tc.spec.act) {
				t.Errorf("activation = %v; want %v", net.Activation, tc.spec.act)
			}
			if net.Input != (model.Input{Width: tc.width, Height: tc.width, Preprocess: tc.preprocess}) {
				t.Errorf("input = %+v; want %dx%d %s", net.Input, tc.width, tc.width, tc.preprocess)
			}
			classes := tc.spec.sizes[len(tc.spec.sizes)-1]
			if len(net.Labels) != classes || net.Labels[classes-1] != string(rune('0'+classes-1)) {
				t.Errorf("labels = %v; want 0..%d", net.Labels, classes-1)
			}
			if o := net.Origin; o == nil || o.Format != "onnx" || o.Producer != "onnxtest" || o.Opset != tc.opset || len(o.SHA256) != 64 {
				t.Errorf("origin = %+v; want onnx from onnxtest, opset %d, with the file's digest", o, tc.opset)
			}
			if net.Version != model.NewVersion(net.Created, net.MLP.Params) || net.Name != DefaultName {
				t.Errorf("name %q version %q; want %q and the version of its weights", net.Name, net.Version, DefaultName)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			const batch = 7
			x := onnxtest.Random(rng, batch*tc.spec.sizes[0])
			got := net.Forward(x, batch, &model.Workspace[float32]{})
			for r := range batch {
				want := tc.spec.forward(x[r*tc.spec.sizes[0] : (r+1)*tc.spec.sizes[0]])
				for c, w := range want {
					if d := math.Abs(float64(got[r*classes+c]) - w); d > 1e-5 {
						t.Fatalf("example %d class %d: probability %v; want %v (difference %.2g)", r, c, got[r*classes+c], w, d)
					}
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestImportReadsAColourInputFromItsShape(t *testing.T) {
	net, err := ImportBytes(pytorchColour(newSpec(6, "Relu", 3*8*6, 8, 2), 3, 6, 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (model.Input{Width: 8, Height: 6, Preprocess: model.PreprocessResize, Channels: 3}); net.Input != want {
		t.Errorf("input %+v; want %+v", net.Input, want)
	}
}

func TestImportOptionsOverrideTheDefaults(t *testing.T) {
	file := pytorch(newSpec(6, "Relu", 784, 8, 3), 28, 28)
	net, err := ImportBytes(file, Options{Name: "cats", Labels: []string{"cat", "dog", "bird"}, Preprocess: model.PreprocessResize,
		InputWidth: 49, InputHeight: 16})
	if err != nil {
		t.Fatal(err)
	}
	if net.Name != "cats" || strings.Join(net.Labels, ",") != "cat,dog,bird" ||
		net.Input != (model.Input{Width: 49, Height: 16, Preprocess: model.PreprocessResize}) {
		t.Errorf("got name %q labels %v input %+v", net.Name, net.Labels, net.Input)
	}
	for _, bad := range []struct {
		name string
		opts Options
		want string
	}{
		{"two labels for three classes", Options{Labels: []string{"a", "b"}}, "2 labels for the 3 classes"},
		{"a repeated label", Options{Labels: []string{"a", "b", "a"}}, `label "a" appears twice`},
		{"an input size that is not 784 pixels", Options{InputWidth: 20, InputHeight: 20}, "400 values, but the first layer takes 784"},
		{"two input channels", Options{InputChannels: 2}, "2 input channels"},
		{"three channels of 784 values", Options{InputChannels: 3}, "784 values cannot hold 3 channels"},
		{"an unknown preprocessing", Options{Preprocess: "sharpen"}, `preprocess "sharpen"`},
		{"a name with a newline", Options{Name: "a\nb"}, "unprintable"},
	} {
		t.Run("refuses "+bad.name, func(t *testing.T) {
			_, err := ImportBytes(file, bad.opts)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("error = %v; want ErrUnsupported saying %q", err, bad.want)
			}
		})
	}
}
