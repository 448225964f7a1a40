package model

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestColourInputRoundTripsAndGrayFilesAreUnchanged(t *testing.T) {
	t.Run("the embedded default model records no channels and reads as gray", func(t *testing.T) {
		n, err := Default()
		if err != nil {
			t.Fatal(err)
		}
		if n.Input.Channels != 0 || n.Input.ChannelCount() != 1 || n.Input.Size() != 784 {
			t.Fatalf("default input %+v: %d channels, size %d; want 1 channel of 784", n.Input, n.Input.ChannelCount(), n.Input.Size())
		}
		if bytes.Contains(defaultModel[:4096], []byte(`"channels"`)) {
			t.Error("the embedded file's header names channels")
		}
	})
	t.Run("a colour model keeps its 3 channels through the file", func(t *testing.T) {
		n := testNetwork(t)
		n.Info.Input = Input{Width: 16, Height: 16, Preprocess: PreprocessResize, Channels: 3}
		n.Layers = []int{768, 16, 10}
		c, err := New(n.Info, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		data, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"channels":3`)) {
			t.Error("the header does not say channels 3")
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if got.Input != c.Input {
			t.Errorf("input after round trip = %+v; want %+v", got.Input, c.Input)
		}
	})
	for _, tc := range []struct {
		name   string
		in     Input
		inputs int
		want   string
	}{
		{"colour with the mnist preprocessing", Input{Width: 28, Height: 28, Preprocess: PreprocessMNIST, Channels: 3}, 3 * 784, "gray only"},
		{"two channels", Input{Width: 28, Height: 28, Preprocess: PreprocessResize, Channels: 2}, 2 * 784, "want 1 (gray) or 3"},
		{"a colour input on a gray-sized layer", Input{Width: 28, Height: 28, Preprocess: PreprocessResize, Channels: 3}, 784, "does not match 784"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			n := testNetwork(t)
			n.Info.Input = tc.in
			n.Layers = []int{tc.inputs, 16, 10}
			if _, err := New(n.Info, rand.New(rand.NewPCG(1, 2))); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}
