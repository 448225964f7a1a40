package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// edge is one request at the edges of HTTP itself: methods, encodings, escapes, repeated headers and parameters.
type edge struct {
	name, method, path string
	header             http.Header
	body               []byte
	status             int
	// want are strings the answer must hold, among its headers (as "Name: value") and its body.
	want []string
	// never are strings the answer must not hold.
	never []string
	// rows is the number of rows a v2 answer's output must have.
	rows int
}

func TestTheEdgesOfHTTP(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	img, label := digitPNG(t, 0)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(img)
	zw.Close()
	version := e.Model().Version
	escaped := strings.Replace(version, "-", "%2D", 1)
	b64 := base64.StdEncoding.EncodeToString(img)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	png := h("Content-Type", "image/png")
	admin := h("Authorization", "Bearer "+testToken)

	for _, c := range []edge{
		// HEAD wherever GET works, as RFC 9110 asks; 405 lists it.
		{name: "HEAD /healthz", method: "HEAD", path: "/healthz", status: 200},
		{name: "HEAD /openapi.yaml", method: "HEAD", path: "/openapi.yaml", status: 200, want: []string{"Content-Type: application/yaml"}},
		{name: "HEAD /models (admin)", method: "HEAD", path: "/models", header: admin, status: 200},
		{name: "HEAD /predict", method: "HEAD", path: "/predict", status: 405, want: []string{"Allow: POST"}},
		{name: "HEAD /v2", method: "HEAD", path: "/v2", status: 200, want: []string{"Content-Type: application/json"}},
		{name: "GET /v2", method: "GET", path: "/v2", status: 200, want: []string{`"name":`}},
		{name: "PUT /healthz", method: "PUT", path: "/healthz", status: 405, want: []string{"Allow: GET, HEAD"}},
		{name: "PUT /v2", method: "PUT", path: "/v2", status: 405, want: []string{"Allow: GET, HEAD", `{"error":`}},
		{name: "PROPFIND on /v2", method: "PROPFIND", path: "/v2", status: 405, want: []string{"Allow: GET, HEAD"}, never: []string{"PUT"}},
		{name: "DELETE /train", method: "DELETE", path: "/train", header: admin, status: 405, want: []string{"Allow: GET, HEAD, POST"}},
		// Methods chi does not know: 404 where no route matches, 405 where one does, and never the raw method.
		{name: "PROPFIND on a path that does not exist", method: "PROPFIND", path: "/nope", status: 404},
		{name: "PROPFIND on /healthz", method: "PROPFIND", path: "/healthz", status: 405, want: []string{"Allow: GET, HEAD", "method other is not allowed"}},
		{name: "a made-up method", method: "XYZZY1", path: "/predict", status: 405, never: []string{"XYZZY1"}},
		// Compressed bodies are refused plainly instead of failing as undecodable, or passing when they are not.
		{name: "gzip PNG", method: "POST", path: "/predict", header: h("Content-Type", "image/png", "Content-Encoding", "gzip"), body: gz.Bytes(),
			status: 415, want: []string{"Accept-Encoding: identity", "application/problem+json", `Content-Encoding \"gzip\" is not supported`}},
		{name: "a plain PNG labelled br", method: "POST", path: "/predict", header: h("Content-Type", "image/png", "Content-Encoding", "br"), body: img, status: 415},
		{name: "gzip on v2", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json", "Content-Encoding", "gzip"),
			body: []byte(`{}`), status: 415, want: []string{`{"error":`}},
		{name: "an encoding on a request without a body", method: "GET", path: "/healthz", header: h("Content-Encoding", "gzip"), status: 200},
		{name: "an encoding on a path that does not exist", method: "POST", path: "/nope", header: h("Content-Encoding", "gzip"), body: img, status: 404},
		{name: "an encoding on an admin route without a token", method: "POST", path: "/train", header: h("Content-Encoding", "gzip"), body: []byte(`{}`), status: 401},
		{name: "identity is no encoding", method: "POST", path: "/predict", header: h("Content-Type", "image/png", "Content-Encoding", "identity"), body: img, status: 200},
		// Escaped unreserved characters in path parameters mean the characters themselves (RFC 3986, 6.2.2.2).
		{name: "a v2 model name with an escaped hyphen", method: "GET", path: "/v2/models/mnist%2Dmlp", status: 200},
		{name: "a model version with an escaped hyphen", method: "GET", path: "/models/" + escaped, header: admin, status: 200, want: []string{version}},
		{name: "a data set id with an escaped letter", method: "GET", path: "/datasets/mnis%74", header: admin, status: 200},
		{name: "a twice-escaped hyphen is not a hyphen", method: "GET", path: "/v2/models/mnist%252Dmlp", status: 404, want: []string{`mnist%2Dmlp`}},
		{name: "a twice-escaped version is not a version", method: "GET", path: "/models/" + strings.Replace(version, "-", "%252D", 1), header: admin, status: 404},
		{name: "v2 BYTES [2,1] with both items in one row", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[2,1],"datatype":"BYTES","data":[["` + b64 + `","` + b64 + `"]]}]}`), status: 400, want: []string{"row 0 holds 2 items"}},
		{name: "v2 BYTES [2] nested", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":[["` + b64 + `"],["` + b64 + `"]]}]}`), status: 400, want: []string{"nest rows only"}},
		{name: "v2 BYTES of objects", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":[{}]}]}`), status: 400, never: []string{"Go value", "[]string"}},
		// Two credentials are one too many; the right token twice is no better.
		{name: "two Authorization headers", method: "GET", path: "/models",
			header: h("Authorization", "Bearer "+testToken, "Authorization", "Bearer "+testToken), status: 401, want: []string{"malformed admin token"}},
		// top_k: once, and anything above the number of classes means all of them.
		{name: "top_k twice", method: "POST", path: "/predict?top_k=2&top_k=5", header: png, body: img, status: 400, want: []string{"more than once"}},
		// debug: true or false as strconv.ParseBool spells them, once.
		{name: "debug=1", method: "POST", path: "/predict?debug=1", header: png, body: img, status: 200, want: []string{`"input":`}},
		{name: "debug=false", method: "POST", path: "/predict?debug=false", header: png, body: img, status: 200, never: []string{`"input":`}},
		{name: "debug=maybe", method: "POST", path: "/predict?debug=maybe", header: png, body: img, status: 400,
			want: []string{"application/problem+json", "debug must be true or false"}},
		{name: "debug=yes", method: "POST", path: "/predict?debug=yes", header: png, body: img, status: 400},
		{name: "debug empty is debug absent", method: "POST", path: "/predict?debug=", header: png, body: img, status: 200, never: []string{`"input":`}},
		{name: "debug twice", method: "POST", path: "/predict?debug=true&debug=true", header: png, body: img, status: 400, want: []string{"more than once"}},
		{name: "top_k beyond int64", method: "POST", path: "/predict?top_k=99999999999999999999999", header: png, body: img, status: 200},
		{name: "top_k below int64", method: "POST", path: "/predict?top_k=-99999999999999999999999", header: png, body: img, status: 400},
		// JSON errors name the place in the body, not Go's types.
		{name: "inputs of the wrong type", method: "POST", path: "/predict", header: h("Content-Type", "application/json"), body: []byte(`{"inputs": "x"}`),
			status: 400, want: []string{"inputs: want an array of rows, got a string"}, never: []string{"Go struct", "predictJSON"}},
		{name: "a string among the inputs", method: "POST", path: "/predict", header: h("Content-Type", "application/json"), body: []byte(`{"inputs": [["x"]]}`),
			status: 400, want: []string{"inputs[0][0]: want a number, got a string"}},
		{name: "an unknown field", method: "POST", path: "/predict", header: h("Content-Type", "application/json"), body: []byte(`{"input": []}`),
			status: 400, want: []string{`unknown field \"input\"`}, never: []string{"json:"}},
		{name: "a seed below zero", method: "POST", path: "/train", header: admin, body: []byte(`{"seed": -1}`),
			status: 400, want: []string{"seed: want a whole number of at least 0, got number -1"}},
		{name: "JSON cut short", method: "POST", path: "/predict", header: h("Content-Type", "application/json"), body: []byte(`{"inputs": [[0.1, `),
			status: 400, want: []string{"ends in the middle of a value"}},
		{name: "v2 messages hold no package names", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["aGVsbG8="]}]}`), status: 422, never: []string{"imageprep:"}},
		// BYTES tensors of shape [N,1] may nest their rows.
		{name: "v2 BYTES [1,1] nested", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[1,1],"datatype":"BYTES","data":[["` + b64 + `"]]}]}`), status: 200, rows: 1},
		{name: "v2 BYTES [2,1] nested", method: "POST", path: "/v2/models/mnist-mlp/infer", header: h("Content-Type", "application/json"),
			body: []byte(`{"inputs":[{"name":"image","shape":[2,1],"datatype":"BYTES","data":[["` + b64 + `"],["` + b64 + `"]]}]}`), status: 200, rows: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, srv.URL+c.path, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range c.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var answer strings.Builder
			resp.Header.Write(&answer)
			answer.Write(body)
			if resp.StatusCode != c.status {
				t.Errorf("status %d; want %d\n%s", resp.StatusCode, c.status, answer.String())
			}
			for _, w := range c.want {
				if !strings.Contains(answer.String(), w) {
					t.Errorf("answer lacks %q:\n%s", w, answer.String())
				}
			}
			for _, n := range c.never {
				if strings.Contains(answer.String(), n) {
					t.Errorf("answer holds %q:\n%s", n, answer.String())
				}
			}
			if c.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD answered with a body of %d bytes", len(body))
			}
			if c.rows > 0 {
				var out struct{ Outputs []struct{ Shape []int } }
				json.Unmarshal(body, &out)
				if len(out.Outputs) != 1 || len(out.Outputs[0].Shape) != 2 || out.Outputs[0].Shape[0] != c.rows {
					t.Errorf("outputs %+v; want one of shape [%d,10]", out.Outputs, c.rows)
				}
			}
			if c.status == 200 && c.path == "/predict?top_k=99999999999999999999999" {
				var out predictResponse
				json.Unmarshal(body, &out)
				if len(out.Predictions) != 1 || len(out.Predictions[0].Top) != 10 || out.Predictions[0].Index != label {
					t.Errorf("top_k beyond int64: %s; want all 10 classes, led by %d", body, label)
				}
			}
		})
	}

	// No method a client makes up reaches the metric's labels.
	for _, m := range []string{"AAA1", "AAA2", "AAA3"} {
		req, _ := http.NewRequest(m, srv.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(metrics, []byte(`method="AAA`)) || !bytes.Contains(metrics, []byte(`method="other"`)) {
		t.Errorf("made-up methods reach the metrics as they are, or not as \"other\"")
	}
}
