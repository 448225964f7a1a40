package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func idxBytes(typ byte, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typ, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gzipped(p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func TestReadIDXAcceptsPlainAndGzip(t *testing.T) {
	raw := idxBytes(8, []uint32{2, 2, 3}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	for name, in := range map[string][]byte{"plain": raw, "gzip": gzipped(raw)} {
		t.Run(name, func(t *testing.T) {
			idx, err := ReadIDX(bytes.NewReader(in), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := idx.Dims, []int{2, 2, 3}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Errorf("dims = %v; want %v", got, want)
			}
			if len(idx.Data) != 12 || idx.Data[11] != 12 {
				t.Errorf("data = %v; want 1..12", idx.Data)
			}
		})
	}
}

func TestReadIDXRefusesMalformedFiles(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty file", nil, "magic"},
		{"nonzero magic prefix", []byte{1, 0, 8, 1, 0, 0, 0, 1, 0}, "two zero bytes"},
		{"float elements", idxBytes(0x0d, []uint32{1}, []byte{0, 0, 0, 0}), "unsigned byte"},
		{"no dimensions", []byte{0, 0, 8, 0}, "dimensions"},
		{"too many dimensions", []byte{0, 0, 8, 9}, "dimensions"},
		{"truncated header", []byte{0, 0, 8, 3, 0, 0}, "dimension 0"},
		{"zero dimension", idxBytes(8, []uint32{0, 28, 28}, nil), "zero"},
		{"header claims more images than the file holds", idxBytes(8, []uint32{3, 2, 2}, make([]byte, 8)), "holds only 8 bytes"},
		{"header over the size limit", idxBytes(8, []uint32{1 << 30, 28, 28}, nil), "limit"},
		{"trailing bytes", idxBytes(8, []uint32{2}, []byte{1, 2, 3}), "trailing"},
		{"corrupt gzip", []byte{0x1f, 0x8b, 0, 0}, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadIDX(bytes.NewReader(tt.in), 1<<20)
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			if !errors.Is(err, ErrIDX) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want ErrIDX mentioning %q", err, tt.want)
			}
		})
	}
}

func TestFromIDXChecksShapes(t *testing.T) {
	img := &IDX{Dims: []int{2, 2, 2}, Data: make([]byte, 8)}
	if _, err := FromIDX(img, &IDX{Dims: []int{3}, Data: []byte{0, 1, 1}}); err == nil {
		t.Error("2 images with 3 labels: got nil error")
	}
	if _, err := FromIDX(&IDX{Dims: []int{2, 4}, Data: make([]byte, 8)}, &IDX{Dims: []int{2}, Data: []byte{0, 1}}); err == nil {
		t.Error("2-dimensional image file: got nil error")
	}
	s, err := FromIDX(img, &IDX{Dims: []int{2}, Data: []byte{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || len(s.Classes) != 2 {
		t.Errorf("got %d examples, %d classes; want 2, 2", s.Len(), len(s.Classes))
	}
}

func TestLoadMNIST(t *testing.T) {
	dir, err := FindMNIST(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		split Split
		n     int
	}{{Train, 60000}, {Test, 10000}} {
		s, err := LoadMNIST(dir, tt.split)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != tt.n || s.Rows != 28 || s.Cols != 28 || len(s.Classes) != 10 {
			t.Errorf("%s: %d examples of %dx%d in %d classes; want %d of 28x28 in 10", tt.split, s.Len(), s.Rows, s.Cols, len(s.Classes), tt.n)
		}
		var counts [10]int
		for _, y := range s.Y {
			counts[y]++
		}
		for c, n := range counts {
			// Every digit is between 8.5% and 12% of MNIST; a scrambled label file would not be.
			if f := float64(n) / float64(tt.n); f < 0.085 || f > 0.12 {
				t.Errorf("%s: digit %d is %.3f of the labels", tt.split, c, f)
			}
		}
	}
}

func TestFindMNISTUsesVerifiedLocalCopy(t *testing.T) {
	data := t.TempDir()
	dir, err := FindMNIST(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if want := data + "/mnist"; dir != want {
		t.Fatalf("first call returned %s; want the copy in %s", dir, want)
	}
	// A tampered local copy must not be trusted.
	if err := verifyMNIST(dir); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(dir+"/t10k-labels-idx1-ubyte.gz", []byte("tampered")); err != nil {
		t.Fatal(err)
	}
	if err := verifyMNIST(dir); err == nil {
		t.Error("tampered file passed verification")
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes(8, []uint32{2, 2, 2}, make([]byte, 8)))
	f.Add(gzipped(idxBytes(8, []uint32{3}, []byte{1, 2, 3})))
	f.Add(idxBytes(8, []uint32{1 << 20, 28, 28}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, err := ReadIDX(bytes.NewReader(in), 1<<16)
		if err != nil {
			return
		}
		n := 1
		for _, d := range idx.Dims {
			n *= d
		}
		if n != len(idx.Data) {
			t.Fatalf("dims %v but %d bytes", idx.Dims, len(idx.Data))
		}
	})
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }
