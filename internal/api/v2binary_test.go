package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/apitest"
)

// The bodies below are laid out by hand as the binary tensor data extension specifies them (Triton's
// binary_tensor_data): a JSON header whose length is the Inference-Header-Content-Length header, then each binary
// input's bytes in input order; FP32 elements little-endian, BYTES elements a 4-byte little-endian length and the
// bytes. Responses are compared byte for byte with the body the specification makes of the engine's probabilities.

// le32 lays out float32s little-endian, written out here rather than through the code under test.
func le32(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// lenPrefixed lays out BYTES elements.
func lenPrefixed(items ...[]byte) []byte {
	var b []byte
	for _, it := range items {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(it)))
		b = append(b, it...)
	}
	return b
}

func postBinary(t *testing.T, url, header string, data []byte, headerLen string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(append([]byte(header), data...)))
	req.Header.Set("Content-Type", "application/octet-stream")
	if headerLen != "" {
		req.Header.Set(binaryHeader, headerLen)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestV2BinaryTensorsByteExactInBothDirections(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	net := e.Model()
	url := srv.URL + "/v2/models/" + net.Name + "/infer"
	set := testDigits(t)
	rows := func(n int) []float32 {
		x := make([]float32, 0, n*784)
		for i := range n {
			for _, p := range set.Image(i) {
				x = append(x, float32(p)/255)
			}
		}
		return x
	}
	pngs := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i], _ = digitPNG(t, i)
		}
		return out
	}
	// want is the probabilities the engine gives for rows x, or for images as /predict prepares them.
	want := func(x []float32, n int) []float32 {
		res, err := e.Predict(context.Background(), x, n, 784)
		if err != nil {
			t.Fatal(err)
		}
		return res.Probs
	}
	fromImages := func(imgs [][]byte) []float32 {
		body := `{"inputs":[{"name":"image","shape":[` + strconv.Itoa(len(imgs)) + `],"datatype":"BYTES","data":[`
		for i, img := range imgs {
			if i > 0 {
				body += ","
			}
			body += strconv.Quote(base64.StdEncoding.EncodeToString(img))
		}
		resp, out := apitest.Do(t, "POST", url, "", body+`]}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("JSON BYTES request: %d %s", resp.StatusCode, out)
		}
		var r struct{ Outputs []struct{ Data []float32 } }
		json.Unmarshal(out, &r)
		return r.Outputs[0].Data
	}
	for _, c := range []struct {
		name      string
		header    string
		data      []byte
		wantProbs func() []float32
		n         int
	}{
		{"FP32 one row, binary output asked on the output",
			`{"id":"r1","inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}`,
			le32(rows(1)), func() []float32 { return want(rows(1), 1) }, 1},
		{"FP32 a batch of three, binary output asked for every output",
			`{"id":"r1","parameters":{"binary_data_output":true},"inputs":[{"name":"input","shape":[3,784],"datatype":"FP32","parameters":{"binary_data_size":9408}}]}`,
			le32(rows(3)), func() []float32 { return want(rows(3), 3) }, 3},
		{"BYTES one PNG",
			`{"id":"r1","parameters":{"binary_data_output":true},"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(len(lenPrefixed(pngs(1)...))) + `}}]}`,
			lenPrefixed(pngs(1)...), func() []float32 { return fromImages(pngs(1)) }, 1},
		{"BYTES a batch of three PNGs, shape [3,1]",
			`{"id":"r1","parameters":{"binary_data_output":true},"inputs":[{"name":"image","shape":[3,1],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(len(lenPrefixed(pngs(3)...))) + `}}]}`,
			lenPrefixed(pngs(3)...), func() []float32 { return fromImages(pngs(3)) }, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := postBinary(t, url, c.header, c.data, strconv.Itoa(len(c.header)))
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			probs := c.wantProbs()
			wantHeader := fmt.Sprintf(`{"model_name":%q,"model_version":%q,"id":"r1","outputs":[{"name":"probabilities","shape":[%d,10],"datatype":"FP32","parameters":{"binary_data_size":%d}}]}`,
				net.Name, net.Version, c.n, 4*len(probs))
			wantBody := append([]byte(wantHeader), le32(probs)...)
			if !bytes.Equal(body, wantBody) {
				t.Errorf("body\n got %q\nwant %q", body, wantBody)
			}
			if got := resp.Header.Get(binaryHeader); got != strconv.Itoa(len(wantHeader)) {
				t.Errorf("%s %q; want %d", binaryHeader, got, len(wantHeader))
			}
		})
	}

	t.Run("binary input, JSON output when not asked", func(t *testing.T) {
		header := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`
		resp, body := postBinary(t, url, header, le32(rows(1)), strconv.Itoa(len(header)))
		var r struct{ Outputs []struct{ Data []float32 } }
		if err := json.Unmarshal(body, &r); resp.StatusCode != 200 || err != nil || len(r.Outputs) != 1 || len(r.Outputs[0].Data) != 10 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if resp.Header.Get(binaryHeader) != "" {
			t.Errorf("a JSON answer carries %s", binaryHeader)
		}
	})
}

func TestV2BinaryRefusals(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	url := srv.URL + "/v2/models/" + e.Model().Name + "/infer"
	fp32 := func(size int) string {
		return `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
	}
	half := le32(make([]float32, 784))
	png, _ := digitPNG(t, 0)
	bytesHeader := func(size int) string {
		return `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
	}
	overlong := binary.LittleEndian.AppendUint32(nil, uint32(len(png)+1))
	overlong = append(overlong, png...)
	for _, c := range []struct {
		name, header string
		data         []byte
		headerLen    string // "" means the header's real length
		want         string
	}{
		{"sizes that do not add up: fewer bytes than binary_data_size", fp32(3136), half[:3000], "", "more than the 3000 bytes left"},
		{"sizes that do not add up: bytes beyond binary_data_size", fp32(3136), append(half, 0, 0, 0, 0), "", "4 bytes of binary data follow"},
		{"a binary_data_size that does not fit the shape", fp32(3132), half[:3132], "", "3132 bytes for 784 FP32"},
		{"a header length beyond the body", fp32(3136), half, "999999", "but the body has"},
		{"a header length that is not a number", fp32(3136), half, "12a", "is not a byte count"},
		{"a negative header length", fp32(3136), half, "-1", "is not a byte count"},
		{"a header length that cuts the JSON", fp32(3136), half, "10", "malformed JSON"},
		{"a BYTES length prefix beyond its tensor", bytesHeader(len(overlong)), overlong, "", "but " + strconv.Itoa(len(png)) + " are left"},
		{"a BYTES tensor without a whole length prefix", bytesHeader(2), []byte{1, 0}, "", "no 4-byte length prefix"},
		{"BYTES elements fewer than the shape", `{"inputs":[{"name":"input","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(4+len(png)) + `}}]}`,
			lenPrefixed(png), "", "BYTES element 1 has no 4-byte length prefix"},
		{"a fractional binary_data_size", fp32(3136)[:len(fp32(3136))-6] + `.5}}]}`, half, "", "whole number of bytes"},
		{"both data and binary_data_size", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[0],"parameters":{"binary_data_size":3136}}]}`, half, "", "both data and binary_data_size"},
		{"values out of range", fp32(3136), le32(append(make([]float32, 783), 2)), "", "outside 0..1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hl := c.headerLen
			if hl == "" {
				hl = strconv.Itoa(len(c.header))
			}
			resp, body := postBinary(t, url, c.header, c.data, hl)
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); resp.StatusCode != 400 || err != nil || !strings.Contains(e.Error, c.want) {
				t.Errorf("%d %s; want 400 {\"error\"} containing %q", resp.StatusCode, body, c.want)
			}
		})
	}
	t.Run("binary_data_size without the header", func(t *testing.T) {
		resp, body := apitest.Do(t, "POST", url, "", fp32(3136))
		if resp.StatusCode != 400 || !strings.Contains(string(body), "has no "+binaryHeader) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestV2ServerMetadataVersionRoutesAndErrorShape(t *testing.T) {
	srv, e := newTestServer(t, Config{Version: "1.2.3"})
	net := e.Model()
	base := srv.URL + "/v2/models/" + net.Name
	resp, body := apitest.Do(t, "GET", srv.URL+"/v2", "", "")
	var meta struct {
		Name, Version string
		Extensions    []string
	}
	if err := json.Unmarshal(body, &meta); resp.StatusCode != 200 || err != nil || meta.Name != "perceptron" ||
		meta.Version != "1.2.3" || len(meta.Extensions) != 1 || meta.Extensions[0] != "binary_tensor_data" {
		t.Errorf("GET /v2: %d %s", resp.StatusCode, body)
	}
	infer := `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[` + strings.Repeat("0,", 783) + `0]}]}`
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", base + "/versions/" + net.Version, "", 200, `"platform": "perceptron_mlp"`},
		{"GET", base + "/versions/" + net.Version + "/ready", "", 200, `"ready": true`},
		{"POST", base + "/versions/" + net.Version + "/infer", infer, 200, `"model_version": "` + net.Version + `"`},
		{"GET", base + "/versions/v0", "", 404, `version \"v0\" of model \"mnist-mlp\" is not served; the models are mnist-mlp`},
		{"GET", base + "/versions/v0/ready", "", 404, `version \"v0\" of model \"mnist-mlp\" is not served; the models are mnist-mlp`},
		{"POST", base + "/versions/v0/infer", infer, 404, `version \"v0\" of model \"mnist-mlp\" is not served; the models are mnist-mlp`},
		{"GET", srv.URL + "/v2/nothing/here", "", 404, `{"error":"no such route"}`},
		{"GET", srv.URL + "/v2/", "", 404, `{"error":"no such route"}`},
		{"DELETE", base, "", 405, `{"error":"method DELETE is not allowed here; use GET or HEAD"}`},
		{"PUT", srv.URL + "/v2", "", 405, `{"error":"method PUT is not allowed here; use GET or HEAD"}`},
		{"POST", srv.URL + "/v2", "{}", 405, `{"error":"method POST is not allowed here; use GET or HEAD"}`},
		{"DELETE", srv.URL + "/v2/", "", 404, `{"error":"no such route"}`},
		{"GET", base + "/infer", "", 405, `{"error":"method GET is not allowed here; use POST"}`},
		{"POST", base + "/infer", strings.Replace(infer, `"name":"input"`, `"name":"pixels"`, 1), 400, `unknown input \"pixels\"`},
		{"POST", base + "/infer", strings.Replace(infer, `"name":"input"`, `"name":"image"`, 1), 400, `unknown input \"image\"`},
	} {
		resp, body := apitest.Do(t, c.method, c.path, "", c.body)
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s: %d %s; want %d with %s", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
		if c.status >= 400 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q; want the protocol's application/json", c.method, c.path, resp.Header.Get("Content-Type"))
		}
	}
}

func TestV2MetadataDescribesTheOneInputAndHowToSendImages(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	_, body := apitest.Do(t, "GET", srv.URL+"/v2/models/"+e.Model().Name, "", "")
	var meta struct {
		Inputs []struct {
			Name, Datatype string
			Shape          []int
			Parameters     map[string]string
		}
	}
	if err := json.Unmarshal(body, &meta); err != nil || len(meta.Inputs) != 1 {
		t.Fatalf("inputs of %s; want exactly one", body)
	}
	in := meta.Inputs[0]
	if in.Name != "input" || in.Datatype != "FP32" || len(in.Shape) != 2 || in.Shape[0] != -1 || in.Shape[1] != 784 {
		t.Errorf("input %+v; want input FP32 [-1,784]", in)
	}
	if alt := in.Parameters["bytes_alternative"]; !strings.Contains(alt, "BYTES") || !strings.Contains(alt, "base64") {
		t.Errorf("bytes_alternative %q; want it to say BYTES and base64", alt)
	}
}

// FuzzV2Binary feeds the binary body parser arbitrary bodies and header lengths: it must refuse or accept, never
// panic, and what it accepts must account for every byte after the header.
func FuzzV2Binary(f *testing.F) {
	header := `{"inputs":[{"name":"input","shape":[1,4],"datatype":"BYTES","parameters":{"binary_data_size":13}}]}`
	f.Add([]byte(header+"\x01\x00\x00\x00a\x00\x00\x00\x00\x00\x00\x00\x00"), uint32(len(header)))
	fp := `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`
	f.Add([]byte(fp+"\x00\x00\x80\x3f\x00\x00\x00\x00"), uint32(len(fp)))
	f.Add([]byte(`{}`), uint32(99))
	f.Fuzz(func(t *testing.T, body []byte, headerLen uint32) {
		req, err := parseBinaryBody(body, []string{strconv.FormatUint(uint64(headerLen), 10)})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v; want an *Error", err, err)
			}
			return
		}
		total := 0
		for _, in := range req.Inputs {
			total += len(in.binary)
			if len(in.Shape) == 2 && in.Shape[0] > 0 && in.Shape[0] < 64 && in.Shape[1] > 0 && in.Shape[1] < 64 {
				v2BinaryFloats(in, in.Shape[1], 64)
			}
		}
		if total != len(body)-int(headerLen) {
			t.Fatalf("inputs hold %d binary bytes; the body has %d after the header", total, len(body)-int(headerLen))
		}
	})
}

func TestAPanicAnswersInTheShapeOfItsRoute(t *testing.T) {
	// The router's shape: the recovery is outside the routes, and the /v2 routes say their errors' shape.
	boom := func(http.ResponseWriter, *http.Request) { panic("boom") }
	h := chi.NewRouter()
	h.Use(withRequestID, withRecover(zap.NewNop()))
	h.Route("/v2", func(v chi.Router) {
		v.Use(withV2Errors)
		v.Post("/models/{name}/infer", boom)
	})
	h.Post("/predict", boom)
	for path, want := range map[string]string{
		"/v2/models/mnist-mlp/infer": "application/json",
		"/predict":                   "application/problem+json",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, nil))
		if w.Code != 500 || w.Header().Get("Content-Type") != want {
			t.Errorf("%s: %d %q %s; want 500 %s", path, w.Code, w.Header().Get("Content-Type"), w.Body, want)
		}
	}
}
