// Package model is the trained network as the service sees it: a multilayer perceptron (any number of hidden layers
// with sigmoid, ReLU or tanh, softmax output) whose forward pass runs a whole batch as matrix products, the facts that
// travel with it (labels, preprocessing, training data, metrics, hyper-parameters), its checksummed file format, and
// the embedded default MNIST model. Training lives in package train; model only reads weights once they are published.
package model

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Preprocessing names how an uploaded image becomes the input vector; it is recorded in the model so each model is
// served with the preprocessing it was trained with.
type Preprocessing string

const (
	// PreprocessMNIST makes any digit image look like MNIST: ink bright on black, fitted to 20x20 and centred by
	// centre of mass in 28x28.
	PreprocessMNIST Preprocessing = "mnist"
	// PreprocessResize resizes the whole image to the input size, for photos, in luminance or, with 3 channels, in
	// colour.
	PreprocessResize Preprocessing = "resize"
)

// Input describes what the first layer expects.
type Input struct {
	Width      int           `json:"width"`
	Height     int           `json:"height"`
	Preprocess Preprocessing `json:"preprocess"`
	// Channels is 3 for colour (red, green and blue planes one after the other, only with PreprocessResize), and 1
	// or 0 for luminance. Zero is left out of the header, so the files written before colour keep their bytes.
	Channels int `json:"channels,omitempty"`
}

// ChannelCount is 1 for gray and 3 for colour.
func (in Input) ChannelCount() int { return max(in.Channels, 1) }

// Size is the number of input values, Width*Height*ChannelCount().
func (in Input) Size() int { return in.Width * in.Height * in.ChannelCount() }

// Check reports why in is not an input spec a model may have: an unknown preprocessing, or a channel count other
// than 1, or 3 with the resize preprocessing.
func (in Input) Check() error {
	switch in.Preprocess {
	case PreprocessMNIST, PreprocessResize:
	default:
		return fmt.Errorf("unknown preprocessing %q", in.Preprocess)
	}
	switch {
	case in.Channels == 0 || in.Channels == 1:
	case in.Channels == 3 && in.Preprocess == PreprocessResize:
	case in.Channels == 3:
		return fmt.Errorf("3 channels with the %s preprocessing, which is gray only", in.Preprocess)
	default:
		return fmt.Errorf("%d channels; want 1 (gray) or 3 (colour)", in.Channels)
	}
	return nil
}

// Metrics are a model's measured quality. Zero means not measured.
type Metrics struct {
	TestAccuracy       float64 `json:"test_accuracy,omitempty"`
	ValidationAccuracy float64 `json:"validation_accuracy,omitempty"`
	TrainAccuracy      float64 `json:"train_accuracy,omitempty"`
	Loss               float64 `json:"loss,omitempty"`
	Epochs             int     `json:"epochs,omitempty"`
	TrainSeconds       float64 `json:"train_seconds,omitempty"`
}

// Info is everything a model file says about the network besides its weights.
type Info struct {
	Name       string     `json:"name"`
	Version    string     `json:"version"`
	Created    time.Time  `json:"created"`
	Layers     []int      `json:"layers"` // sizes, inputs first and classes last
	Activation Activation `json:"activation"`
	Labels     []string   `json:"labels"`
	Input      Input      `json:"input"`
	Dataset    string     `json:"dataset,omitempty"`
	Parent     string     `json:"parent,omitempty"` // version this one was trained from or replaces
	Metrics    Metrics    `json:"metrics"`
	// Hyperparameters is the training request that produced the model, as the trainer wrote it.
	Hyperparameters json.RawMessage `json:"hyperparameters,omitempty"`
	// Origin says where a model made elsewhere came from; nil means it was trained here. Files written before the
	// field existed have none, and a nil Origin is left out of the header, so their bytes and versions are unchanged.
	Origin *Origin `json:"origin,omitempty"`
	// Calibration makes the model's confidence mean what it says; nil for a model never calibrated, whose
	// probabilities are the plain softmax and which accepts every answer.
	Calibration *Calibration `json:"calibration,omitempty"`
	// FeatureDistance rejects inputs whose hidden activations are unlike every class of the training data; nil
	// for a model without one, which this check accepts every input of. Left out of the header when nil, so older
	// files keep their bytes.
	FeatureDistance *FeatureDistance `json:"feature_distance,omitempty"`
	// Gate describes the network that answers not_a_digit for inputs that are not digits (see Gate); nil for a
	// model without one. Left out of the header when nil, so older files keep their bytes.
	Gate *Gate `json:"gate,omitempty"`
}

// Origin is the provenance of an imported model.
type Origin struct {
	// Format is the file format it was imported from: "onnx".
	Format string `json:"format"`
	// Producer and ProducerVersion are the tool that wrote the file, as the file says (ONNX producer_name and
	// producer_version, e.g. "pytorch" "2.1.0").
	Producer        string `json:"producer,omitempty"`
	ProducerVersion string `json:"producer_version,omitempty"`
	// Opset is the version of the ONNX operator set the graph was written for.
	Opset int64 `json:"opset,omitempty"`
	// SHA256 is the hex digest of the imported file, so the file can be matched to its version.
	SHA256 string `json:"sha256,omitempty"`
	// Version is the perceptron version the file was exported from, when it was one of ours.
	Version string `json:"version,omitempty"`
}

// Calibration is a temperature fitted on held-out data, applied at serving, and the confidence below which an
// answer is not accepted.
type Calibration struct {
	// Temperature divides the output layer's values before the softmax (temperature scaling, Guo et al. 2017): above
	// 1 it softens an overconfident network's probabilities, below 1 it sharpens them. It never changes the
	// predicted class. It is fitted by minimising the negative log-likelihood of the held-out examples.
	Temperature float64 `json:"temperature"`
	// MinConfidence is the model's default threshold: an answer whose calibrated confidence is below it is not
	// accepted. 0 accepts every answer.
	MinConfidence float64 `json:"min_confidence"`
	// Examples is how many held-out examples the fit used; ECEBefore and ECEAfter are their expected calibration
	// error (15 equal-width bins of confidence) with the plain softmax and with the temperature.
	Examples  int     `json:"examples"`
	ECEBefore float64 `json:"ece_before"`
	ECEAfter  float64 `json:"ece_after"`
}

// Temperature returns the temperature the network's probabilities are computed with: its calibration's, else 1.
func (info *Info) Temperature() float64 {
	if info.Calibration == nil {
		return 1
	}
	return info.Calibration.Temperature
}

// MinConfidence returns the network's default threshold of confidence: its calibration's, else 0.
func (info *Info) MinConfidence() float64 {
	if info.Calibration == nil {
		return 0
	}
	return info.Calibration.MinConfidence
}

// Network is a trained classifier: float32 weights plus the Info that describes them. Once published it is only
// read, so any number of goroutines may call Forward at once with their own workspaces.
type Network struct {
	Info
	MLP *MLP[float32]
	// GateMLP is the gate's network (see Gate), nil when Info.Gate is.
	GateMLP *MLP[float32]
}

// New returns a network of the given architecture with weights drawn from rng (He or Xavier, see MLP.Init).
func New(info Info, rng *rand.Rand) (*Network, error) {
	if err := info.check(); err != nil {
		return nil, err
	}
	n := &Network{Info: info, MLP: NewMLP[float32](info.Layers, info.Activation)}
	n.MLP.Init(rng)
	return n, nil
}

// Validate reports why info does not describe a network this package can build and serve: an architecture over the
// limits, an unknown activation or preprocessing, labels that do not match the classes, or an input size that does
// not match the first layer. Importers call it before building a network.
func (info *Info) Validate() error { return info.check() }

func (info *Info) check() error {
	if err := CheckArchitecture(info.Layers); err != nil {
		return err
	}
	if _, ok := activationNames[info.Activation]; !ok {
		return fmt.Errorf("invalid activation %d", info.Activation)
	}
	if c := info.Layers[len(info.Layers)-1]; len(info.Labels) != c {
		return fmt.Errorf("%d labels for %d output classes", len(info.Labels), c)
	}
	if err := info.Input.Check(); err != nil {
		return err
	}
	if info.Input.Size() != info.Layers[0] {
		return fmt.Errorf("input %dx%dx%d does not match %d input units", info.Input.Width, info.Input.Height,
			info.Input.ChannelCount(), info.Layers[0])
	}
	if c := info.Calibration; c != nil {
		// The negated comparisons also refuse NaN.
		if !(c.Temperature >= MinTemperature && c.Temperature <= MaxTemperature) {
			return fmt.Errorf("calibration temperature %v outside %v..%v", c.Temperature, MinTemperature, MaxTemperature)
		}
		if !(c.MinConfidence >= 0 && c.MinConfidence <= 1) {
			return fmt.Errorf("calibration min_confidence %v outside 0..1", c.MinConfidence)
		}
	}
	if f := info.FeatureDistance; f != nil {
		if !(f.Layer >= 0 && f.Layer < len(info.Layers)-2) {
			return fmt.Errorf("feature distance on hidden layer %d of %d", f.Layer, len(info.Layers)-2)
		}
		if err := f.check(info.Layers[f.Layer+1], info.Layers[len(info.Layers)-1]); err != nil {
			return err
		}
	}
	if g := info.Gate; g != nil {
		if err := g.check(info.Layers[0]); err != nil {
			return err
		}
		if ParamCount(info.Layers)+ParamCount(g.Layers) > MaxParams {
			return fmt.Errorf("network and gate: %d parameters, at most %d", ParamCount(info.Layers)+ParamCount(g.Layers), MaxParams)
		}
	}
	return nil
}

// The temperatures a model file may hold. Outside this range the fit has failed: a network does not become a
// hundred times over- or underconfident.
const (
	MinTemperature = 0.01
	MaxTemperature = 100
)

// Forward returns the class probabilities of a batch of n inputs (see MLP.Forward).
// The probabilities are calibrated: the output layer is divided by the network's temperature before the softmax.
func (n *Network) Forward(x []float32, batch int, ws *Workspace[float32]) []float32 {
	return n.MLP.forward(x, batch, ws, n.Temperature(), true)
}

// Clone returns a deep copy, for a trainer that keeps improving a network while the copy is published.
func (n *Network) Clone() *Network {
	c := &Network{Info: n.Info, MLP: NewMLP[float32](n.MLP.Sizes, n.MLP.Activation)}
	copy(c.MLP.Params, n.MLP.Params)
	c.Layers = slices.Clone(n.Layers)
	c.Labels = slices.Clone(n.Labels)
	c.Hyperparameters = slices.Clone(n.Hyperparameters)
	if n.Origin != nil {
		o := *n.Origin
		c.Origin = &o
	}
	if n.Calibration != nil {
		cal := *n.Calibration
		c.Calibration = &cal
	}
	if n.FeatureDistance != nil {
		f := *n.FeatureDistance
		f.Whitening = slices.Clone(f.Whitening)
		f.Means = make([][]float64, len(n.FeatureDistance.Means))
		for i, m := range n.FeatureDistance.Means {
			f.Means[i] = slices.Clone(m)
		}
		c.FeatureDistance = &f
	}
	if n.Gate != nil {
		g := *n.Gate
		g.Layers = slices.Clone(g.Layers)
		c.Gate = &g
		c.GateMLP = NewMLP[float32](n.GateMLP.Sizes, n.GateMLP.Activation)
		copy(c.GateMLP.Params, n.GateMLP.Params)
	}
	return c
}

// Argmax returns the index of the largest value of row, the predicted class.
func Argmax[T Float](row []T) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}
