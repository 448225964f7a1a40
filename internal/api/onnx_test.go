package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/apitest"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

// importForm is a POST /models body: the file in the part "model" and the given text fields.
func importForm(t testing.TB, file []byte, fields map[string]string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if file != nil {
		w, _ := mw.CreateFormFile("model", "model.onnx")
		w.Write(file)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func adminRequest(t *testing.T, method, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return apitest.Send(t, method, url, testToken, contentType, body)
}

func listVersions(t *testing.T, base string) []string {
	t.Helper()
	resp, body := adminRequest(t, "GET", base+"/models", "", nil)
	var out struct{ Models []registry.Entry }
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET /models: %d %s", resp.StatusCode, body)
	}
	var v []string
	for _, e := range out.Models {
		v = append(v, e.Version)
	}
	return v
}

// importCount is the value of perceptron_model_imports_total for result, read from /metrics.
func importCount(t *testing.T, base, result string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	prefix := `perceptron_model_imports_total{result="` + result + `"} `
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "absent"
}

func TestImportAndExportONNXOverHTTP(t *testing.T) {
	srv, engine := newTestServer(t, Config{})
	defaultVersion := engine.Model().Version

	body, ct := importForm(t, onnxtest.MLP(1, 784, 16, 10), map[string]string{"name": "torch-digits", "labels": "a,b,c,d,e,f,g,h,i,j"})
	resp, data := adminRequest(t, "POST", srv.URL+"/models", ct, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /models: %d %s", resp.StatusCode, data)
	}
	var e registry.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Name != "torch-digits" || e.Labels[9] != "j" || e.Active || e.Origin == nil || e.Origin.Format != "onnx" ||
		e.Origin.Producer != "onnxtest" || e.Origin.Opset != 17 || resp.Header.Get("Location") != "/models/"+e.Version {
		t.Errorf("entry %s, Location %q", data, resp.Header.Get("Location"))
	}
	if engine.Model().Version != defaultVersion {
		t.Errorf("serving %s after an import without activate; want %s still", engine.Model().Version, defaultVersion)
	}
	if got := importCount(t, srv.URL, ImportStored); got != "1" {
		t.Errorf("imports stored = %s; want 1", got)
	}

	t.Run("the export of the default model imports and serves the same probabilities", func(t *testing.T) {
		resp, file := adminRequest(t, "GET", srv.URL+"/models/"+defaultVersion+"/onnx", "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="`+defaultVersion+`.onnx"` {
			t.Fatalf("GET onnx: %d %v", resp.StatusCode, resp.Header)
		}
		body, ct := importForm(t, file, map[string]string{"activate": "always"})
		resp, data := adminRequest(t, "POST", srv.URL+"/models", ct, body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /models: %d %s", resp.StatusCode, data)
		}
		var e registry.Entry
		json.Unmarshal(data, &e)
		serving := engine.Model()
		def, _ := model.Default()
		if !e.Active || serving.Version != e.Version || serving.Parent != defaultVersion || !slices.Equal(serving.MLP.Params, def.MLP.Params) {
			t.Errorf("serving %s (parent %s), entry active %v; want the re-imported default, bit for bit", serving.Version, serving.Parent, e.Active)
		}
		_, d1, _ := strings.Cut(defaultVersion, "-")
		if _, d2, _ := strings.Cut(e.Version, "-"); d1 != d2 {
			t.Errorf("version %s; want the default's digest %s", e.Version, d1)
		}
		img, _ := digitPNG(t, 0)
		mp, mpType := multipartBody(t, map[string][][]byte{"image": {img}})
		resp, data = post(t, srv.URL+"/predict", mpType, mp)
		if got := decodePredictions(t, resp, data); got.Model.Version != e.Version {
			t.Errorf("predict answered with %s; want %s", got.Model.Version, e.Version)
		}
	})
}

func TestImportRefusalsStoreNothing(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	good := onnxtest.MLP(1, 784, 8, 10)
	formWith := func(file []byte, fields map[string]string) func(t *testing.T) ([]byte, string) {
		return func(t *testing.T) ([]byte, string) { return importForm(t, file, fields) }
	}
	random := make([]byte, 1000)
	for i := range random {
		random[i] = byte(i*7919 + i*i)
	}
	for _, tc := range []struct {
		name   string
		body   func(t *testing.T) ([]byte, string)
		status int
		result string
		detail string
	}{
		{"a convolutional network", formWith(onnxtest.Conv(), nil), 422, ImportUnsupported, `node "conv1" (Conv): operator Conv is not supported`},
		{"a model with two inputs", formWith(onnxtest.TwoInputs(), nil), 422, ImportUnsupported, "2 inputs"},
		{"a truncated file", formWith(good[:len(good)-100], nil), 422, ImportMalformed, "truncated"},
		{"random bytes", formWith(random, nil), 422, ImportMalformed, "not an ONNX model"},
		{"a tensor declaring 2 GiB", formWith(onnxtest.HugeTensor(), nil), 413, ImportTooLarge, "2.0 GiB"},
		{"labels that do not match the classes", formWith(good, map[string]string{"labels": "cat,dog"}), 422, ImportUnsupported, "2 labels for the 10 classes"},
		{"activate=if_better", formWith(good, map[string]string{"activate": "if_better"}), 422, ImportInvalid, "without validation data"},
		{"an input_width that is not a number", formWith(good, map[string]string{"input_width": "wide"}), 400, ImportInvalid, "input_width"},
		{"no model part", formWith(nil, map[string]string{"name": "x"}), 400, ImportInvalid, `part "model"`},
		{"a body that is not multipart", func(t *testing.T) ([]byte, string) { return good, "application/octet-stream" }, 415, ImportInvalid, "multipart/form-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listVersions(t, srv.URL)
			count := importCount(t, srv.URL, tc.result)
			body, ct := tc.body(t)
			resp, data := adminRequest(t, "POST", srv.URL+"/models", ct, body)
			var p Problem
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal(data, &p) != nil || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("answer %d %s %s; want %d problem+json saying %q", resp.StatusCode, resp.Header.Get("Content-Type"), data, tc.status, tc.detail)
			}
			if after := listVersions(t, srv.URL); !slices.Equal(before, after) {
				t.Errorf("versions %v after a refused import; want %v", after, before)
			}
			if got := importCount(t, srv.URL, tc.result); got == count {
				t.Errorf("imports with result %s still %s; want one more", tc.result, got)
			}
		})
	}
}

func TestONNXRoutesMatchOpenAPI(t *testing.T) {
	srv, engine := newTestServer(t, Config{})
	h := newSpecHarness(t, srv)
	good, goodType := importForm(t, onnxtest.MLP(2, 784, 8, 10), map[string]string{"name": "spec", "preprocess": "mnist", "input_width": "28", "input_height": "28", "activate": "never"})
	conv, convType := importForm(t, onnxtest.Conv(), nil)
	huge, hugeType := importForm(t, onnxtest.HugeTensor(), nil)
	ifBetter, ifBetterType := importForm(t, onnxtest.MLP(2, 784, 8, 10), map[string]string{"activate": "if_better"})
	noModel, noModelType := importForm(t, nil, map[string]string{"name": "x"})
	h.run(t, []specCase{
		{name: "import", method: "POST", path: "/models", token: testToken, contentType: goodType, body: good, status: 201},
		{name: "422 a convolution", method: "POST", path: "/models", token: testToken, contentType: convType, body: conv, status: 422},
		{name: "413 a 2 GiB tensor", method: "POST", path: "/models", token: testToken, contentType: hugeType, body: huge, status: 413},
		{name: "422 if_better", method: "POST", path: "/models", token: testToken, contentType: ifBetterType, body: ifBetter, status: 422, specRefuses: true},
		{name: "400 no model part", method: "POST", path: "/models", token: testToken, contentType: noModelType, body: noModel, status: 400, specRefuses: true},
		{name: "415 not multipart", method: "POST", path: "/models", token: testToken, contentType: "application/octet-stream", body: []byte{1}, status: 415, specRefuses: true},
		{name: "401 without a token", method: "POST", path: "/models", contentType: goodType, body: good, status: 401, specRefuses: true},
		{name: "export", method: "GET", path: "/models/" + engine.Model().Version + "/onnx", token: testToken, status: 200},
		{name: "404 export of an unknown version", method: "GET", path: "/models/nope/onnx", token: testToken, status: 404},
	})
}
