package oip

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

func TestRawFP32RoundTripsLittleEndian(t *testing.T) {
	v := []float32{0, 1, 0.5, -2}
	b := AppendFP32(nil, v)
	// 0.5 is 0x3f000000: little-endian puts the zero bytes first.
	if want := []byte{0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x3f, 0, 0, 0, 0xc0}; !bytes.Equal(b, want) {
		t.Fatalf("AppendFP32 = % x; want % x", b, want)
	}
	got, err := ReadFP32(nil, b, 4)
	if err != nil || !slices.Equal(got, v) {
		t.Errorf("ReadFP32 = %v, %v; want %v", got, err, v)
	}
	if _, err := ReadFP32(nil, b[:15], 4); !errors.Is(err, ErrLayout) {
		t.Errorf("15 bytes for 4 values: %v; want ErrLayout", err)
	}
	f64, err := ReadFP64(nil, []byte{0, 0, 0, 0, 0, 0, 0xe0, 0x3f}, 1)
	if err != nil || f64[0] != 0.5 {
		t.Errorf("ReadFP64 = %v, %v; want [0.5]", f64, err)
	}
}

func TestSplitBytes(t *testing.T) {
	two := append(AppendBytes(nil, []byte("ab")), AppendBytes(nil, nil)...)
	if !bytes.Equal(two, []byte{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0}) {
		t.Fatalf("AppendBytes = % x", two)
	}
	items, err := SplitBytes(two, 2)
	if err != nil || len(items) != 2 || string(items[0]) != "ab" || len(items[1]) != 0 {
		t.Fatalf("SplitBytes = %q, %v", items, err)
	}
	for _, c := range []struct {
		b     []byte
		count int
	}{
		{two, 3},                     // fewer elements than the shape
		{two, 1},                     // bytes left over
		{[]byte{5, 0, 0, 0, 'a'}, 1}, // a length beyond the tensor
		{[]byte{1, 0}, 1},            // no whole prefix
		{[]byte{0xff, 0xff, 0xff, 0xff}, 1},
	} {
		if _, err := SplitBytes(c.b, c.count); !errors.Is(err, ErrLayout) {
			t.Errorf("SplitBytes(% x, %d): %v; want ErrLayout", c.b, c.count, err)
		}
	}
}

func TestCheckUnitRefusesOutOfRangeAndNaN(t *testing.T) {
	if err := CheckUnit([]float32{0, 0.25, 1}); err != nil {
		t.Error(err)
	}
	for _, v := range []float32{-0.01, 1.01, float32(math.NaN()), float32(math.Inf(1))} {
		if err := CheckUnit([]float32{0, v}); err == nil {
			t.Errorf("%v accepted", v)
		}
	}
}

func ExampleSplitBytes() {
	tensor := AppendBytes(AppendBytes(nil, []byte("first")), []byte("second"))
	items, err := SplitBytes(tensor, 2)
	fmt.Printf("%q %v\n", items, err)
	// Output: ["first" "second"] <nil>
}

func TestMetadataStatesTheColourLayout(t *testing.T) {
	for _, tc := range []struct {
		in     model.Input
		inputs int
		want   string
	}{
		{model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}, 784, "row-major 28x28"},
		{model.Input{Width: 8, Height: 6, Preprocess: model.PreprocessResize, Channels: 3}, 144, "8x6 red values row-major, then green, then blue (CHW)"},
	} {
		net, err := model.New(model.Info{Name: "m", Layers: []int{tc.inputs, 2}, Activation: model.ReLU, Labels: []string{"a", "b"}, Input: tc.in},
			rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		meta := Metadata(net)
		if got := meta.Inputs[0]; got.Shape[1] != int64(tc.inputs) || !strings.Contains(got.Parameters["value_range"], tc.want) {
			t.Errorf("input %+v: shape %v, value_range %q; want [-1,%d] and %q", tc.in, got.Shape, got.Parameters["value_range"], tc.inputs, tc.want)
		}
	}
}
