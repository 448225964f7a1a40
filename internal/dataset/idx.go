package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

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
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
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
