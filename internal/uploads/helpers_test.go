package uploads

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// member is one entry of a test archive. A zero hdr makes a regular file of data named name.
type member struct {
	name string
	data []byte
	hdr  *tar.Header // for tar only: a special entry (link, device, ...)
	mode int64       // for zip only: Unix mode bits, e.g. symlink
}

func makeZip(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		if m.mode != 0 {
			fh.CreatorVersion = 3 << 8 // Unix, so the reader believes the mode bits
			fh.ExternalAttrs = uint32(m.mode) << 16
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTar(t testing.TB, members []member, compress bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	} = nopCloser{&buf}
	if compress {
		w = gzip.NewWriter(&buf)
	}
	tw := tar.NewWriter(w)
	for _, m := range members {
		h := m.hdr
		if h == nil {
			h = &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: 0o644, Size: int64(len(m.data))}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// grayImage wraps MNIST pixels (row-major, 0 background, 255 ink) as an image.
func grayImage(pix []byte, w, h int) *image.Gray {
	return &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
}

// tinyPNG is a small valid image: a white bar on black, so the mnist mode finds a digit in it.
func tinyPNG(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for y := 1; y < 7; y++ {
		img.SetGray(4, y, color.Gray{Y: 255})
	}
	return uploadtest.EncodePNG(img)
}

// mnistDigits returns the first n test examples of each of the given classes, in class order, from the real MNIST
// files.
func mnistDigits(t testing.TB, n int, classes ...byte) *dataset.Set {
	t.Helper()
	s := mnisttest.Test(t)
	var idx []int
	for _, c := range classes {
		k := 0
		for i := 0; i < s.Len() && k < n; i++ {
			if s.Y[i] == c {
				idx = append(idx, i)
				k++
			}
		}
	}
	return s.Subset(idx)
}

func openStore(t testing.TB, lim Limits) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// kindOf names the kind of err for messages.
func kindOf(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, ErrInvalid):
		return "ErrInvalid"
	case errors.Is(err, ErrTooLarge):
		return "ErrTooLarge"
	case errors.Is(err, ErrNotFound):
		return "ErrNotFound"
	}
	return "an untyped error"
}

func mustParseTime(t testing.TB, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
