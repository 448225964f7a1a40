package uploads

import (
	"context"
	"slices"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestClassLabelsAreNormalisedToNFC imports folders whose names look the same but are spelt in different Unicode
// forms: macOS writes "café" decomposed (e + U+0301), most other systems composed (U+00E9). They are one class.
func TestClassLabelsAreNormalisedToNFC(t *testing.T) {
	img := tinyPNG(t)
	const composed, decomposed = "caf\u00e9", "cafe\u0301"
	for _, tt := range []struct {
		name    string
		archive []byte
	}{
		{"a zip with café in both forms has one café class", makeZip(t, []member{
			{name: composed + "/1.png", data: img}, {name: decomposed + "/2.png", data: img}, {name: "th\u00e9/1.png", data: img},
		})},
		{"a tar with only the decomposed form stores the composed one", makeTar(t, []member{
			{name: decomposed + "/1.png", data: img}, {name: decomposed + "/2.png", data: img}, {name: "the\u0301/1.png", data: img},
		}, true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t, Limits{})
			info, err := s.Import(context.Background(), tt.archive, ImportOptions{Preprocess: model.PreprocessMNIST})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{composed, "th\u00e9"}; !slices.Equal(info.Classes, want) || !slices.Equal(info.Counts, []int{2, 1}) {
				t.Errorf("got classes %+q with counts %v; want %+q with counts [2 1]", info.Classes, info.Counts, want)
			}
		})
	}
}
