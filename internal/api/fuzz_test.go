package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzBody sends body to path with the given content type and admin token, and fails on any 5xx or on an answer
// that is not the right error shape: whatever the bytes, a client error is a 4xx problem (or v2 error).
func fuzzBody(t *testing.T, h http.Handler, method, path, contentType string, body []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	if w.Code >= 400 {
		ct := w.Header().Get("Content-Type")
		if strings.HasPrefix(path, "/v2/") {
			if !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("v2 error without \"error\": %s", w.Body)
			}
		} else if ct != "application/problem+json" {
			t.Fatalf("%d with Content-Type %q", w.Code, ct)
		}
	}
}

func FuzzPredictJSON(f *testing.F) {
	srv, _ := newTestServer(f, Config{MaxBodyBytes: 1 << 20, MaxImages: 8, MaxPixels: 1 << 20})
	img, _ := digitPNG(f, 0)
	f.Add([]byte(`{"inputs": [[0.1, 0.2]]}`))
	f.Add([]byte(`{"images": ["aGVsbG8="]}`))
	f.Add([]byte(`{"images": ["data:image/png;base64,` + base64.StdEncoding.EncodeToString(img) + `"]}`))
	f.Add([]byte(`{"inputs": [[1e400]], "images": null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, srv.Config.Handler, "POST", "/predict", "application/json", body)
	})
}

func FuzzTrainRequest(f *testing.F) {
	srv, _ := newTestServer(f, Config{AdminFailLimit: 1 << 30})
	f.Add([]byte(`[16]`))
	f.Add([]byte(`[1e999]`))
	f.Add([]byte(`{"a": [1, 2]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The fuzzed bytes become the value of "hidden", and "epochs": 0 comes last (the last key wins), so no request
		// is ever valid: the fuzz loop must not start real training.
		body = []byte(`{"hidden": ` + string(body) + `, "epochs": 0}`)
		fuzzBody(t, srv.Config.Handler, "POST", "/train", "application/json", body)
	})
}

func FuzzV2Infer(f *testing.F) {
	srv, _ := newTestServer(f, Config{MaxBodyBytes: 1 << 20, MaxImages: 8, MaxPixels: 1 << 20})
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[0.5]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[2,784],"datatype":"FP64","data":[[0],[1]]}]}`))
	f.Add([]byte(`{"parameters":{"min_confidence":0.9},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}],"outputs":[{"name":"reason"},{"name":"accepted"}]}`))
	f.Add([]byte(`{"parameters":{"min_confidence":[1]},"inputs":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, srv.Config.Handler, "POST", "/v2/models/mnist-mlp/infer", "application/json", body)
	})
}

// FuzzMinConfidence checks the parser of the min_confidence query parameter: a value comes back only when it is a
// number from 0 to 1, and anything else is an invalid-input error, never a panic.
func FuzzMinConfidence(f *testing.F) {
	for _, s := range []string{"", "0", "1", "0.5", "-0", "1e-3", "NaN", "Inf", "0x1p-1", "1.0000001", " 0.5", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok, err := parseMinConfidence(s)
		switch {
		case err != nil:
			var e *Error
			if ok || !errors.As(err, &e) || e.Kind != KindInvalid {
				t.Errorf("%q: ok %v, error %v; want an invalid-input error", s, ok, err)
			}
		case ok && !(v >= 0 && v <= 1):
			t.Errorf("%q: accepted %v, outside 0..1", s, v)
		case !ok && s != "":
			t.Errorf("%q: neither a value nor an error", s)
		}
	})
}

func FuzzMultipartPredict(f *testing.F) {
	srv, _ := newTestServer(f, Config{MaxBodyBytes: 1 << 20, MaxImages: 8, MaxPixels: 1 << 20})
	img, _ := digitPNG(f, 0)
	body, _ := multipartOf([2]string{"image", string(img)}, [2]string{"image", "x"})
	f.Add(body)
	f.Fuzz(func(t *testing.T, body []byte) {
		// The boundary multipartOf picks is random; use a fixed one the seed may contain.
		fuzzBody(t, srv.Config.Handler, "POST", "/predict", "multipart/form-data; boundary="+boundaryOf(body), body)
	})
}

// boundaryOf guesses the multipart boundary from the body's first line, so mutated bodies keep one.
func boundaryOf(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\r\n"))
	b := strings.TrimPrefix(string(line), "--")
	if b == "" || len(b) > 70 || strings.ContainsAny(b, " \"\t;") {
		return "x"
	}
	return b
}
