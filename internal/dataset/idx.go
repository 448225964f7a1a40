package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// This file is the one place that knows the IDX format: a big-endian header (two zero bytes, the element type, the
// number of dimensions, then each dimension as a uint32) followed by the elements, often gzip-compressed as a whole.
// MNIST ships in it and uploaded data sets are stored in it.

// IDX is one decoded IDX file: an n-dimensional array of unsigned bytes, the format MNIST ships in.
// Dims[0] is the number of items (images or labels); the rest describe one item (rows, columns).
type IDX struct {
	Dims []int
	Data []byte
}

// idxUnsignedByte is the only IDX element type a labelled image set uses.
const idxUnsignedByte = 0x08

// maxIDXDims bounds the header so a hostile file cannot make us read an absurd number of dimensions.
const maxIDXDims = 4

// ErrIDX is wrapped by every error about a malformed IDX file.
var ErrIDX = errors.New("invalid IDX file")

// ReadIDX decodes an IDX file, plain or gzip-compressed (detected from the first bytes). maxBytes caps the size of the
// data the header may announce; a header that claims more, or more than the file holds, or a file with trailing bytes,
// is refused. Memory grows only with bytes actually read, so a lying header cannot force a large allocation.
func ReadIDX(r io.Reader, maxBytes int64) (*IDX, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && isGzip(magic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrIDX, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}

	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return nil, fmt.Errorf("%w: reading magic number: %v", ErrIDX, err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("%w: magic number %#x does not start with two zero bytes", ErrIDX, head)
	}
	if head[2] != idxUnsignedByte {
		return nil, fmt.Errorf("%w: element type %#x is not unsigned byte (0x08)", ErrIDX, head[2])
	}
	nd := int(head[3])
	if nd < 1 || nd > maxIDXDims {
		return nil, fmt.Errorf("%w: %d dimensions, want 1 to %d", ErrIDX, nd, maxIDXDims)
	}
	dims := make([]int, nd)
	size := int64(1)
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%w: reading dimension %d: %v", ErrIDX, i, err)
		}
		if d == 0 {
			return nil, fmt.Errorf("%w: dimension %d is zero", ErrIDX, i)
		}
		dims[i] = int(d)
		size *= int64(d)
		if size > maxBytes {
			return nil, fmt.Errorf("%w: header announces more than the %d-byte limit", ErrIDX, maxBytes)
		}
	}
	data, err := io.ReadAll(io.LimitReader(br, size+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading data: %v", ErrIDX, err)
	}
	switch {
	case int64(len(data)) < size:
		return nil, fmt.Errorf("%w: header announces %d items (%d bytes) but the file holds only %d bytes of data",
			ErrIDX, dims[0], size, len(data))
	case int64(len(data)) > size:
		return nil, fmt.Errorf("%w: trailing bytes after the %d announced items", ErrIDX, dims[0])
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// isGzip reports whether data starts with the gzip magic number.
func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// ReadIDXFile reads the IDX file at path with ReadIDX, naming the path in its errors.
func ReadIDXFile(path string, maxBytes int64) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := ReadIDX(f, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return idx, nil
}

// ReadIDXHeader reads the dimensions from the header of an IDX file held in data, plain or gzip, and checks that
// there are n of them, so that the size the file announces can be checked against limits before the file is read.
// Its errors say what is wrong without naming the file, for the caller to prefix; the rest of the file is ReadIDX's
// to check.
func ReadIDXHeader(data []byte, n int) ([]int, error) {
	var r io.Reader = bytes.NewReader(data)
	if isGzip(data) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("not a readable gzip stream: %v", err)
		}
		r = zr
	}
	br := bufio.NewReaderSize(r, 64)
	head := make([]byte, 4+4*n)
	if _, err := io.ReadFull(br, head[:4]); err != nil {
		return nil, errors.New("too short for an IDX header")
	}
	if head[0] != 0 || head[1] != 0 || head[2] != idxUnsignedByte {
		return nil, fmt.Errorf("not an IDX file of unsigned bytes (magic number %#x)", head[:4])
	}
	if int(head[3]) != n {
		return nil, fmt.Errorf("%d dimensions, want %d", head[3], n)
	}
	if _, err := io.ReadFull(br, head[4:]); err != nil {
		return nil, errors.New("too short for an IDX header")
	}
	dims := make([]int, n)
	for i := range dims {
		d := binary.BigEndian.Uint32(head[4+4*i:])
		if d == 0 || d > 1<<30 {
			return nil, fmt.Errorf("dimension %d is %d", i, d)
		}
		dims[i] = int(d)
	}
	return dims, nil
}

// WriteIDX writes data as an IDX file of unsigned bytes with the given dimensions, the format ReadIDX reads. It
// panics when the dimensions do not describe exactly len(data) bytes: the caller made both.
func WriteIDX(w io.Writer, dims []int, data []byte) error {
	size := 1
	for _, d := range dims {
		size *= d
	}
	if len(dims) == 0 || len(dims) > 255 || size != len(data) {
		panic(fmt.Sprintf("dataset: WriteIDX: %d bytes for dimensions %v", len(data), dims))
	}
	head := make([]byte, 4, 4+4*len(dims))
	head[2], head[3] = idxUnsignedByte, byte(len(dims))
	for _, d := range dims {
		head = binary.BigEndian.AppendUint32(head, uint32(d))
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// WriteGzipIDX writes the IDX file of WriteIDX gzip-compressed at the fastest level: the pixels of a stored set
// compress well even so, and an import should not wait on the compressor.
func WriteGzipIDX(w io.Writer, dims []int, data []byte) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := WriteIDX(zw, dims, data); err != nil {
		return err
	}
	return zw.Close()
}

// FromIDX builds a set from an IDX image file (items x rows x columns) and an IDX label file (items) whose labels
// are class indices 0..classes-1. Class names are the decimal indices, as for MNIST.
func FromIDX(images, labels *IDX) (*Set, error) {
	if len(images.Dims) != 3 {
		return nil, fmt.Errorf("%w: image file has %d dimensions, want 3 (items, rows, columns)", ErrIDX, len(images.Dims))
	}
	if len(labels.Dims) != 1 {
		return nil, fmt.Errorf("%w: label file has %d dimensions, want 1", ErrIDX, len(labels.Dims))
	}
	if images.Dims[0] != labels.Dims[0] {
		return nil, fmt.Errorf("%w: %d images but %d labels", ErrIDX, images.Dims[0], labels.Dims[0])
	}
	maxLabel := 0
	for _, l := range labels.Data {
		maxLabel = max(maxLabel, int(l))
	}
	classes := make([]string, maxLabel+1)
	for i := range classes {
		classes[i] = fmt.Sprint(i)
	}
	s := &Set{Classes: classes, Rows: images.Dims[1], Cols: images.Dims[2], X: images.Data, Y: labels.Data}
	return s, s.Validate()
}
