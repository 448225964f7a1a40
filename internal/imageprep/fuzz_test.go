package imageprep

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodePrepare checks that no input makes PrepareBytes panic, return an error outside the three kinds, or write
// a value outside 0..1, in either mode. Pixels are capped, as image/png's own fuzz test does, so the fuzzer spends
// its time on structure rather than on decoding huge images:
//
//	go test ./internal/imageprep -run '^$' -fuzz FuzzDecodePrepare -fuzztime 1m
func FuzzDecodePrepare(f *testing.F) {
	for _, name := range seedFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	lim := Limits{MaxPixels: 1 << 16, MaxBytes: 1 << 16}
	inputs := []Spec{mnistInput, {Width: 8, Height: 6, Mode: ModeResize}, {Width: 5, Height: 7, Mode: ModeResize, Channels: 3}}
	var p Preparer
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range inputs {
			dst := make([]float32, in.Size())
			_, err := p.PrepareBytes(dst, data, lim, in)
			if errors.Is(err, ErrNoDigit) {
				err = nil // an answer: dst holds the blank vector
			}
			if err != nil {
				if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUndecodable) {
					t.Fatalf("error of no known kind: %v", err)
				}
				return
			}
			for i, v := range dst {
				if !(v >= 0 && v <= 1) || math.IsNaN(float64(v)) {
					t.Fatalf("dst[%d] = %v; want a value in 0..1", i, v)
				}
			}
		}
	})
}
