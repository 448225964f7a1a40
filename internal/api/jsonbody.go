package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decodeJSON reads exactly one JSON value from body into v: nothing but white space may follow it, and with
// knownOnly, fields v does not have are refused. Every error is an *Error whose detail a client can act on (where
// the JSON breaks, which field has the wrong type); errors of reading the body keep their own kinds (bodyError).
func decodeJSON(body io.Reader, v any, knownOnly bool) error {
	dec := json.NewDecoder(body)
	if knownOnly {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var syn *json.SyntaxError
		if err != nil && !errors.As(err, &syn) {
			return bodyError(err) // the body broke off after the value
		}
		return errorf(KindInvalid, "malformed JSON: data after the value")
	}
	return nil
}

// jsonError turns an error of encoding/json into an *Error that names the place in the body, not Go's types.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &Error{Kind: KindInvalid, Detail: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()), Err: err}
	case errors.As(err, &typ):
		where := typ.Field
		if where == "" {
			where = "the body"
		}
		return &Error{Kind: KindInvalid, Detail: fmt.Sprintf("malformed JSON: %s: want %s, got %s", where, jsonKind(typ.Type), typ.Value), Err: err}
	case errors.Is(err, io.EOF):
		return errorf(KindInvalid, "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Kind: KindInvalid, Detail: "malformed JSON: the body ends in the middle of a value", Err: err}
	}
	// DisallowUnknownFields reports `json: unknown field "x"` with no type of its own.
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &Error{Kind: KindInvalid, Detail: "malformed JSON: unknown field " + truncate(field, 64), Err: err}
	}
	return bodyError(err)
}

// jsonKind names what a Go type takes in JSON terms.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of at least 0"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another type"
}
