package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestReadRows(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		width     int
		want      []float32
		kind      Kind // 0 (KindInternal) means no error
		detail    string
	}{
		{"two rows", `[[0, 0.5, 1], [1e-3, 2.5E-1, 0]]`, 3, []float32{0, 0.5, 1, 0.001, 0.25, 0}, 0, ""},
		{"white space everywhere", " [ [ 0 ,1 ] ,\n\t[1,0]\r] ", 2, []float32{0, 1, 1, 0}, 0, ""},
		{"no rows", `[]`, 3, nil, 0, ""},
		{"null", `[[0, null, 1]]`, 3, nil, KindInvalid, "inputs[0][1]: want a number, got null"},
		{"a string", `[[0, 1], [0, "0.5"]]`, 2, nil, KindInvalid, "inputs[1][1]: want a number, got a string"},
		{"an object", `[[{}]]`, 1, nil, KindInvalid, "inputs[0][0]: want a number, got an object"},
		{"too deep", `[[[0]]]`, 1, nil, KindInvalid, "inputs[0][0]: want a number, got an array"},
		{"a row that is a number", `[0.5]`, 1, nil, KindInvalid, "inputs[0]: want an array of numbers, got something else"},
		{"not an array", `{"a": 1}`, 1, nil, KindInvalid, "inputs: want an array of rows, got an object"},
		{"beyond float64", `[[1e999]]`, 1, nil, KindInvalid, "inputs[0][0]: 1e999, beyond the range of numbers"},
		{"negative", `[[-0.1]]`, 1, nil, KindUnprocessable, "inputs[0][0] = -0.1 is outside 0..1"},
		{"short row", `[[0, 1]]`, 3, nil, KindUnprocessable, "inputs[0] has 2 values; the model takes 3"},
		{"long row", `[[0, 1, 1, 1]]`, 3, nil, KindUnprocessable, "inputs[0] has 4 values; the model takes 3"},
		{"too many rows", `[[0], [0], [0], [0], [0]]`, 1, nil, KindTooLarge, "more than 4 images"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, rows, err := readRows([]byte(c.raw), c.width, 4, nil)
			var e *Error
			switch {
			case c.kind == 0 && err != nil:
				t.Fatalf("error %v", err)
			case c.kind == 0:
				if len(got) != rows*c.width || !equalFloats(got, c.want) {
					t.Errorf("%d rows %v; want %v", rows, got, c.want)
				}
			case !errors.As(err, &e) || e.Kind != c.kind || !strings.Contains(e.Detail, c.detail):
				t.Errorf("error %v; want kind %d saying %q", err, c.kind, c.detail)
			}
		})
	}
}

func TestReadTensor(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		shape     []int
		want      []float32
		err       string
	}{
		{"flat", `[0, 0.25, 1, 0.5]`, []int{2, 2}, []float32{0, 0.25, 1, 0.5}, ""},
		{"nested by row", `[[0, 0.25], [1, 0.5]]`, []int{2, 2}, []float32{0, 0.25, 1, 0.5}, ""},
		{"nested three deep as the shape says", `[[[0], [0.25]], [[1], [0.5]]]`, []int{2, 2, 1}, []float32{0, 0.25, 1, 0.5}, ""},
		{"nested deeper than the shape", `[[[0], [0.25]], [[1], [0.5]]]`, []int{2, 2}, nil, "data[0][0] is nested deeper than the shape [2,2]"},
		{"ragged rows that add up to the count", `[[0, 0.25, 1], [0.5]]`, []int{2, 2}, nil, "data[0] holds more than 2 values; the shape [2,2] needs 2"},
		{"a short row first", `[[0], [0.25, 1, 0.5]]`, []int{2, 2}, nil, "data[0] holds 1 values; the shape [2,2] needs 2"},
		{"too few rows", `[[0, 0.25]]`, []int{2, 2}, nil, "data holds 1 values; the shape [2,2] needs 2"},
		{"too many rows", `[[0, 0.25], [1, 0], [1, 1]]`, []int{2, 2}, nil, "data holds more than 2 values"},
		{"a number where a row belongs", `[[0, 0.25], 1, 0.5]`, []int{2, 2}, nil, "data[1] holds something else; the shape [2,2] wants an array of 2"},
		{"flat then nested", `[0, 0.25, [1, 0.5]]`, []int{2, 2}, nil, "data mixes numbers and arrays"},
		{"empty", `[]`, []int{1, 1}, nil, "holds 0 values; the shape needs 1"},
		{"too few", `[0, 1]`, []int{1, 3}, nil, "holds 2 values; the shape needs 3"},
		{"too many", `[0, 1, 1, 0]`, []int{1, 3}, nil, "more values than the shape says"},
		{"null", `[0, null]`, []int{1, 2}, nil, "data holds null"},
		{"null in a row", `[[0, null]]`, []int{1, 2}, nil, "data holds null"},
		{"a string", `["0.5"]`, []int{1, 1}, nil, "data holds a string"},
		{"not an array", `0.5`, []int{1, 1}, nil, "want an array of numbers"},
		{"out of range", `[1.5]`, []int{1, 1}, nil, "value 1.5 outside 0..1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readTensor([]byte(c.raw), c.shape, nil)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.err == "":
				if !equalFloats(got, c.want) {
					t.Errorf("%v; want %v", got, c.want)
				}
			case err == nil || !strings.Contains(err.Error(), c.err):
				t.Errorf("error %v; want one saying %q", err, c.err)
			}
		})
	}
}

// FuzzReadTensor checks readTensor against encoding/json for the shape [2,3]: data that encoding/json reads as six
// numbers in a flat array, or as two rows of three, with every value in 0..1, must read to the same values; anything
// else (ragged rows, other depths, null, strings, values out of range) must be refused, without panicking.
func FuzzReadTensor(f *testing.F) {
	f.Add([]byte(`[0, 0.5, 1, 1e-3, 2.5E-1, 0]`))
	f.Add([]byte(`[[0, 0.5, 1], [1e-3, 2.5E-1, 0]]`))
	f.Add([]byte(`[[0, 0.5, 1, 1e-3], [2.5E-1, 0]]`))
	f.Add([]byte(`[[[0], [0.5], [1]], [[0], [0], [0]]]`))
	f.Add([]byte(`[[0, null, 1], [0, 0, 0]]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // readTensor only ever sees what the decoder has checked
		}
		shape := []int{2, 3}
		got, err := readTensor(raw, shape, nil)
		var want []float32
		ok := false
		var flat []float64
		var rows [][]float64
		if bytes.Contains(raw, []byte("null")) {
			// encoding/json reads null as "leave the zero": not comparable, and always a refusal here.
		} else if json.Unmarshal(raw, &flat) == nil {
			ok = len(flat) == 6
			for _, v := range flat {
				ok = ok && v >= 0 && v <= 1
				want = append(want, float32(v))
			}
		} else if json.Unmarshal(raw, &rows) == nil {
			ok = len(rows) == 2
			for _, row := range rows {
				ok = ok && len(row) == 3
				for _, v := range row {
					ok = ok && v >= 0 && v <= 1
					want = append(want, float32(v))
				}
			}
		}
		switch {
		case ok && err != nil:
			t.Fatalf("readTensor(%q): %v; encoding/json reads %v", raw, err, want)
		case ok && !equalFloats(got, want):
			t.Fatalf("readTensor(%q) = %v; encoding/json reads %v", raw, got, want)
		case !ok && err == nil:
			t.Fatalf("readTensor(%q) accepted %v; want a refusal", raw, got)
		}
	})
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzReadRows checks readRows against encoding/json: whatever JSON encoding/json reads as rows of finite numbers
// (with no null, which it would read as 0), readRows must read to the same values, or refuse for the same reasons
// (row length, range); and it must refuse everything else without panicking.
func FuzzReadRows(f *testing.F) {
	f.Add([]byte(`[[0, 0.5, 1], [1e-3, 2.5E-1, 0]]`))
	f.Add([]byte(`[[0, null, 1]]`))
	f.Add([]byte(`[[-0, 1E+0, 0.000e5]]`))
	f.Add([]byte(`[[0,1,0],[1],[0,0,0]]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // readRows only ever sees what the decoder has checked
		}
		const width, maxRows = 3, 4
		got, rows, err := readRows(raw, width, maxRows, nil)
		var ref [][]*float64
		if json.Unmarshal(raw, &ref) != nil || bytes.Contains(raw, []byte("null")) {
			if err == nil {
				var check [][]float64
				if json.Unmarshal(raw, &check) != nil {
					t.Fatalf("readRows accepted %q, which encoding/json refuses as rows of numbers", raw)
				}
			}
			return
		}
		var want []float32
		ok := len(ref) <= maxRows
		for _, row := range ref {
			ok = ok && len(row) == width
			for _, v := range row {
				if v == nil {
					return // a null inside a string key would have been caught above; be safe
				}
				ok = ok && *v >= 0 && *v <= 1 && !math.IsInf(*v, 0)
				want = append(want, float32(*v))
			}
		}
		switch {
		case ok && err != nil:
			t.Fatalf("readRows(%q): %v; encoding/json reads %v", raw, err, want)
		case ok && (rows != len(ref) || !equalFloats(got, want)):
			t.Fatalf("readRows(%q) = %v (%d rows); encoding/json reads %v", raw, got, rows, want)
		case !ok && err == nil:
			t.Fatalf("readRows(%q) accepted %v; want a refusal", raw, got)
		}
	})
}
