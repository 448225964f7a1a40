package api

import (
	"errors"
	"fmt"
	"strconv"
)

// numbers reads JSON arrays of numbers without reflection. /predict's "inputs" rows and the Open Inference
// Protocol's FP32 tensors carry hundreds of values per image; through encoding/json they cost most of a request,
// boxed one by one in interfaces or handed to an UnmarshalJSON each. The bytes come from a json.RawMessage, so the
// decoder has already checked that they are JSON; numbers only has to tell arrays, numbers and anything else apart.
type numbers struct {
	b []byte
	i int
}

// errNotNumber says the value at the reader's position is neither a number nor an array (see describe).
var errNotNumber = errors.New("not a number")

func (s *numbers) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// isArray reports whether an array starts at the reader's position.
func (s *numbers) isArray() bool {
	s.space()
	return s.i < len(s.b) && s.b[s.i] == '['
}

// elements calls each with the index of every element of the array at the reader's position; each must read the
// element. It returns each's first error.
func (s *numbers) elements(each func(k int) error) error {
	if !s.isArray() {
		return errNotNumber
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for k := 0; ; k++ {
		if err := each(k); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) {
			return errNotNumber // cannot happen in checked JSON
		}
		s.i++ // ',' or ']'
		if s.b[s.i-1] == ']' {
			return nil
		}
	}
}

// number reads the number at the reader's position. A value that is not a number gives errNotNumber and leaves the
// position on it, for describe; a number beyond float64 gives a range error.
func (s *numbers) number() (float64, error) {
	s.space()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return 0, errNotNumber
	}
	v, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil {
		return 0, fmt.Errorf("%s, beyond the range of numbers", truncate(string(s.b[start:s.i]), 24))
	}
	return v, nil
}

// describe names the JSON value at the reader's position, for a message.
func (s *numbers) describe() string {
	s.space()
	if s.i >= len(s.b) {
		return "nothing"
	}
	switch s.b[s.i] {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "something else"
}

// readRows reads "inputs": an array of rows of exactly width numbers in 0..1, appended to dst. More than maxRows
// rows is 413; a row of another length or a value out of range is 422; anything but numbers is 400.
func readRows(raw []byte, width, maxRows int, dst []float32) ([]float32, int, error) {
	s := numbers{b: raw}
	rows := 0
	err := s.elements(func(i int) error {
		if i >= maxRows {
			return errorf(KindTooLarge, fmt.Sprintf("more than %d images in one request", maxRows))
		}
		rows++
		n := 0
		err := s.elements(func(j int) error {
			v, err := s.number()
			switch {
			case errors.Is(err, errNotNumber):
				return errorf(KindInvalid, fmt.Sprintf("malformed JSON: inputs[%d][%d]: want a number, got %s", i, j, s.describe()))
			case err != nil:
				return errorf(KindInvalid, fmt.Sprintf("malformed JSON: inputs[%d][%d]: %v", i, j, err))
			case !(v >= 0 && v <= 1):
				return errorf(KindUnprocessable, fmt.Sprintf("inputs[%d][%d] = %v is outside 0..1", i, j, v))
			}
			if n < width {
				dst = append(dst, float32(v))
			}
			n++
			return nil
		})
		if errors.Is(err, errNotNumber) {
			return errorf(KindInvalid, fmt.Sprintf("malformed JSON: inputs[%d]: want an array of numbers, got %s", i, s.describe()))
		}
		if err == nil && n != width {
			return errorf(KindUnprocessable, fmt.Sprintf("inputs[%d] has %d values; the model takes %d", i, n, width))
		}
		return err
	})
	if errors.Is(err, errNotNumber) {
		return dst, 0, errorf(KindInvalid, "malformed JSON: inputs: want an array of rows, got "+s.describe())
	}
	return dst, rows, err
}

// readTensor reads the data of a v2 tensor of the given shape: numbers in 0..1, appended to dst, either flat (one
// array of every value, row-major) or nested exactly as the shape says, every array at every level of the length the
// shape gives for it. Rows of other lengths that happen to add up to the right count are refused, not re-split: a
// ragged row means the client's rows are not the images it thinks they are. Errors are plain: the protocol answers
// them all with 400.
func readTensor(raw []byte, shape []int, dst []float32) ([]float32, error) {
	s := numbers{b: raw}
	count := 1
	for _, d := range shape {
		count *= d
	}
	n := 0
	leaf := func() error {
		v, err := s.number()
		switch {
		case errors.Is(err, errNotNumber):
			return fmt.Errorf("data holds %s; want numbers", s.describe())
		case err != nil:
			return fmt.Errorf("has %v", err)
		case !(v >= 0 && v <= 1):
			return fmt.Errorf("has a value %v outside 0..1", v)
		case n >= count:
			return errors.New("has more values than the shape says")
		}
		dst = append(dst, float32(v))
		n++
		return nil
	}
	if !s.isArray() {
		return dst, fmt.Errorf("data holds %s; want an array of numbers", s.describe())
	}
	// The first element decides the layout: a number makes the data flat, an array nested.
	probe := numbers{b: raw, i: s.i + 1}
	if !probe.isArray() {
		err := s.elements(func(int) error {
			if s.isArray() {
				return fmt.Errorf("data mixes numbers and arrays; send it flat or nested as the shape %s", shapeString(shape))
			}
			return leaf()
		})
		if err != nil {
			return dst, err
		}
		if n != count {
			return dst, fmt.Errorf("holds %d values; the shape needs %d", n, count)
		}
		return dst, nil
	}
	var level func(depth int, where string) error
	level = func(depth int, where string) error {
		k := 0
		err := s.elements(func(i int) error {
			if i >= shape[depth] {
				return fmt.Errorf("data%s holds more than %d values; the shape %s needs %d there", where, shape[depth], shapeString(shape), shape[depth])
			}
			k++
			inner := where + "[" + strconv.Itoa(i) + "]"
			switch {
			case depth+1 < len(shape) && !s.isArray():
				return fmt.Errorf("data%s holds %s; the shape %s wants an array of %d there", inner, s.describe(), shapeString(shape), shape[depth+1])
			case depth+1 < len(shape):
				return level(depth+1, inner)
			case s.isArray():
				return fmt.Errorf("data%s is nested deeper than the shape %s", inner, shapeString(shape))
			}
			return leaf()
		})
		if err == nil && k != shape[depth] {
			err = fmt.Errorf("data%s holds %d values; the shape %s needs %d there", where, k, shapeString(shape), shape[depth])
		}
		return err
	}
	return dst, level(0, "")
}

// shapeString writes a tensor shape as the protocol does: [2,784].
func shapeString(shape []int) string {
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	return string(append(b, ']'))
}
