package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxpb"
)

// Keys of the metadata_props Export writes. Import reads the first four from any file, so a model exported by
// another tool can carry its labels and preprocessing too; keyInfo is the whole header of a perceptron model.
const (
	keyLabels      = "perceptron.labels"     // JSON array of strings, one per class
	keyPreprocess  = "perceptron.preprocess" // mnist or resize
	keyInputWidth  = "perceptron.input_width"
	keyInputHeight = "perceptron.input_height"
	// keyInputChannels is 3 for a colour input; absent (as gray models export) means 1.
	keyInputChannels = "perceptron.input_channels"
	keyInfo          = "perceptron.info" // JSON of model.Info
)

// DefaultName names an imported model when neither the caller nor the file does.
const DefaultName = "onnx-mlp"

// maxImageSide bounds the input size an imported model may declare, as the image preparer does.
const maxImageSide = 1 << 14

// describe works out the header of the imported network: what the caller says, else what the file's metadata says,
// else what its graph implies.
func describe(m *onnxpb.ModelProto, g *network, opset int64, data []byte, opts Options) (model.Info, error) {
	meta := map[string]string{}
	for _, p := range m.GetMetadataProps() {
		if _, dup := meta[p.GetKey()]; dup {
			return model.Info{}, malformed("metadata key %s appears twice", quote(p.GetKey()))
		}
		meta[p.GetKey()] = p.GetValue()
	}
	var saved model.Info
	if s, ok := meta[keyInfo]; ok {
		if err := json.Unmarshal([]byte(s), &saved); err != nil {
			return model.Info{}, malformed("metadata %s: %v", keyInfo, err)
		}
	}
	sizes := []int{g.layers[0].in}
	for _, l := range g.layers {
		sizes = append(sizes, l.out)
	}
	sum := sha256.Sum256(data)
	info := model.Info{
		Name: opts.Name, Created: opts.Created, Layers: sizes, Activation: g.activation,
		Dataset: saved.Dataset, Parent: saved.Version, Metrics: saved.Metrics, Hyperparameters: saved.Hyperparameters,
		Origin: &model.Origin{
			Format: "onnx", Producer: text(m.GetProducerName()), ProducerVersion: text(m.GetProducerVersion()),
			Opset: opset, SHA256: hex.EncodeToString(sum[:]), Version: saved.Version,
		},
	}
	// The graph's temperature is what it computes, so it is the one served; a header saved by our export adds the
	// threshold and the calibration figures that go with it.
	if g.temperature != 1 {
		info.Calibration = &model.Calibration{Temperature: g.temperature}
		if c := saved.Calibration; c != nil && float32(1/c.Temperature) == float32(1/g.temperature) {
			cal := *c // the same temperature as far as float32 goes: keep the saved one's exact digits
			info.Calibration = &cal
		}
	}
	if info.Name == "" {
		info.Name = saved.Name
	}
	if info.Name == "" {
		info.Name = DefaultName
	}
	if err := checkText(info.Name); err != nil {
		return model.Info{}, unsupported("name %v", err)
	}
	if info.Created.IsZero() {
		info.Created = time.Now().UTC()
	}
	if info.Activation == 0 { // no hidden layer: the activation is never applied
		info.Activation = model.ReLU
		if _, err := model.ParseActivation(saved.Activation.String()); err == nil {
			info.Activation = saved.Activation
		}
	}
	var err error
	if info.Labels, err = labels(opts.Labels, meta, saved.Labels, sizes[len(sizes)-1]); err != nil {
		return model.Info{}, err
	}
	if info.Input, err = input(opts, meta, saved.Input, g); err != nil {
		return model.Info{}, err
	}
	if err := info.Validate(); err != nil {
		return model.Info{}, unsupported("%v", err)
	}
	return info, nil
}

// labels picks the class labels and checks them: one per class, distinct, printable.
func labels(given []string, meta map[string]string, saved []string, classes int) ([]string, error) {
	out := given
	if out == nil {
		if s, ok := meta[keyLabels]; ok {
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return nil, malformed("metadata %s: want a JSON array of strings: %v", keyLabels, err)
			}
		}
	}
	if out == nil {
		out = saved
	}
	if out == nil {
		out = make([]string, classes)
		for i := range out {
			out[i] = strconv.Itoa(i)
		}
	}
	if len(out) != classes {
		return nil, unsupported("%d labels for the %d classes the model's last layer outputs", len(out), classes)
	}
	seen := map[string]bool{}
	for _, l := range out {
		if err := checkText(l); err != nil {
			return nil, unsupported("label %v", err)
		}
		if seen[l] {
			return nil, unsupported("label %q appears twice", l)
		}
		seen[l] = true
	}
	return out, nil
}

// input picks the image size, channels and preprocessing of the first layer's input.
func input(opts Options, meta map[string]string, saved model.Input, g *network) (model.Input, error) {
	features := g.layers[0].in
	in := model.Input{Width: opts.InputWidth, Height: opts.InputHeight, Preprocess: opts.Preprocess}
	c := opts.InputChannels
	if c == 0 {
		var err error
		if c, err = metaInt(meta, keyInputChannels); err != nil {
			return in, malformed("metadata %s: want a whole number", keyInputChannels)
		}
	}
	if c == 0 && saved.Size() == features {
		c = saved.ChannelCount()
	}
	if c == 0 {
		c = imageChannels(g.inputDims)
	}
	if c != 1 && c != 3 {
		return in, unsupported("%d input channels: want 1 (gray) or 3 (colour)", c)
	}
	if features%c != 0 {
		return in, unsupported("the first layer's %d values cannot hold %d channels", features, c)
	}
	pixels := features / c
	if in.Width == 0 && in.Height == 0 {
		w, errW := metaInt(meta, keyInputWidth)
		h, errH := metaInt(meta, keyInputHeight)
		if errW != nil || errH != nil {
			return in, malformed("metadata %s and %s: want whole numbers", keyInputWidth, keyInputHeight)
		}
		in.Width, in.Height = w, h
	}
	if in.Width == 0 && in.Height == 0 && saved.Size() == features {
		in.Width, in.Height = saved.Width, saved.Height
	}
	if in.Width == 0 && in.Height == 0 {
		in.Width, in.Height = imageSize(g.inputDims, pixels)
	}
	switch {
	case in.Width == 0 || in.Height == 0:
		return in, unsupported("cannot tell the image size of the model's %d inputs: give input_width and input_height", features)
	case in.Width < 0 || in.Height < 0 || in.Width > maxImageSide || in.Height > maxImageSide:
		return in, unsupported("input size %dx%d: each side must be 1 to %d", in.Width, in.Height, maxImageSide)
	case in.Width*in.Height*c != features:
		return in, unsupported("input size %dx%dx%d is %d values, but the first layer takes %d", in.Width, in.Height, c,
			in.Width*in.Height*c, features)
	}
	if c == 3 {
		in.Channels = 3
	}
	if in.Preprocess == "" {
		in.Preprocess = model.Preprocessing(meta[keyPreprocess])
	}
	if in.Preprocess == "" {
		in.Preprocess = saved.Preprocess
	}
	if in.Preprocess == "" {
		in.Preprocess = model.PreprocessResize
		if in.Width == 28 && in.Height == 28 && c == 1 {
			in.Preprocess = model.PreprocessMNIST
		}
	}
	switch in.Preprocess {
	case model.PreprocessMNIST, model.PreprocessResize:
	default:
		return in, unsupported("preprocess %s: want %s or %s", quote(string(in.Preprocess)), model.PreprocessMNIST, model.PreprocessResize)
	}
	if err := in.Check(); err != nil {
		return in, unsupported("%v", err)
	}
	return in, nil
}

// imageChannels is 3 when an input is shaped [N,3,H,W], a colour image in PyTorch's layout, and 1 otherwise.
func imageChannels(dims []int64) int {
	if len(dims) == 4 && dims[1] == 3 {
		return 3
	}
	return 1
}

// imageSize guesses the image behind an input: the last two dimensions of [N,1,H,W] or [N,H,W], 28x28 for MNIST's
// 784 values, or the side of a square. Zero means it cannot tell.
func imageSize(dims []int64, features int) (w, h int) {
	if n := len(dims); n >= 3 && dims[n-1] > 0 && dims[n-2] > 0 && dims[n-1]*dims[n-2] == int64(features) {
		return int(dims[n-1]), int(dims[n-2])
	}
	if features == 784 {
		return 28, 28
	}
	if s := int(math.Sqrt(float64(features))); s*s == features {
		return s, s
	}
	return 0, 0
}

func metaInt(meta map[string]string, key string) (int, error) {
	s, ok := meta[key]
	if !ok {
		return 0, nil
	}
	return strconv.Atoi(s)
}

// text makes a string from the file safe to store and show: valid UTF-8, at most maxTextBytes.
func text(s string) string {
	return truncateText(strings.ToValidUTF8(s, "\uFFFD"))
}

func truncateText(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	s = s[:maxTextBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// assemble builds the network from its header and the graph's layers.
func assemble(info model.Info, g *network) (*model.Network, error) {
	net := &model.Network{Info: info, MLP: model.NewMLP[float32](info.Layers, info.Activation)}
	for i, l := range g.layers {
		copy(net.MLP.Layers[i].W, l.w)
		copy(net.MLP.Layers[i].B, l.b)
	}
	net.Version = model.NewVersion(net.Created, net.MLP.Params)
	return net, nil
}

// SplitLabels parses the comma-separated labels of the command line and the HTTP form; empty means none given.
func SplitLabels(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := strings.Split(s, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}
