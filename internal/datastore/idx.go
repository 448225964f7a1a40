package datastore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// writeIDX writes data as an IDX file of unsigned bytes with the given dimensions, the format dataset.ReadIDX reads.
func writeIDX(w io.Writer, dims []int, data []byte) error {
	size := 1
	for _, d := range dims {
		size *= d
	}
	if len(dims) == 0 || len(dims) > 255 || size != len(data) {
		panic(fmt.Sprintf("datastore: writeIDX: %d bytes for dimensions %v", len(data), dims))
	}
	head := make([]byte, 4, 4+4*len(dims))
	head[2], head[3] = 0x08, byte(len(dims))
	for _, d := range dims {
		head = binary.BigEndian.AppendUint32(head, uint32(d))
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// idxHeader reads the dimensions from the header of an IDX file, plain or gzip, and checks that it has dims of them,
// so that the size it announces can be checked against the limits before the file is read. The rest of the file is
// dataset.ReadIDX's to check.
func idxHeader(data []byte, what string, dims int) ([]int, error) {
	var r io.Reader = bytes.NewReader(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, invalidf("", "%s: not a readable gzip stream: %v", what, err)
		}
		r = zr
	}
	br := bufio.NewReaderSize(r, 64)
	head := make([]byte, 4+4*dims)
	if _, err := io.ReadFull(br, head[:4]); err != nil {
		return nil, invalidf("", "%s: too short for an IDX header", what)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 {
		return nil, invalidf("", "%s: not an IDX file of unsigned bytes (magic number %#x)", what, head[:4])
	}
	if int(head[3]) != dims {
		return nil, invalidf("", "%s: %d dimensions, want %d", what, head[3], dims)
	}
	if _, err := io.ReadFull(br, head[4:]); err != nil {
		return nil, invalidf("", "%s: too short for an IDX header", what)
	}
	out := make([]int, dims)
	for i := range out {
		d := binary.BigEndian.Uint32(head[4+4*i:])
		if d == 0 || d > 1<<30 {
			return nil, invalidf("", "%s: dimension %d is %d", what, i, d)
		}
		out[i] = int(d)
	}
	return out, nil
}
