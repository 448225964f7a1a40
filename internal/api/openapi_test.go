package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	apispec "github.com/perceptron-dev/perceptron/api"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// The tests below hold api/openapi.yaml to the code: the document is valid OpenAPI, it lists exactly the routes
// the router serves, and real answers to real requests match what it says, status, headers and body.

// pendingRoutes are documented routes that other work is wiring into routes.go. Until a route is served its checks
// are skipped, by name, never silently; once it is served they run like every other. Remove a route from here once
// it is wired, so that losing it later fails.
var pendingRoutes = map[string]bool{}

// benchOnlyRoutes are served only with a benchmark flag on and are deliberately left out of the document.
var benchOnlyRoutes = map[string]bool{"POST /bench/floor": true}

// loadSpec parses the embedded api/openapi.yaml and validates it, examples included.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apispec.YAML)
	if err != nil {
		t.Fatalf("loading api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("api/openapi.yaml is not valid OpenAPI: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q; want 3.0.3", doc.OpenAPI)
	}
	// Every operation says what its errors look like: no operation but the infallible ones goes without an error
	// response, and every admin operation documents the 401 and 429 its middleware answers.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Security != nil && len(*op.Security) > 0 {
				for _, code := range []int{401, 429} {
					if op.Responses.Status(code) == nil {
						t.Errorf("%s %s is admin but documents no %d", method, path, code)
					}
				}
			}
		}
	}
}

// servedRoutes walks the router and returns "METHOD /pattern" for every route it serves.
func servedRoutes(t *testing.T, srv *httptest.Server) map[string]bool {
	t.Helper()
	s, ok := srv.Config.Handler.(*Server)
	if !ok {
		t.Fatalf("test server's handler is %T; want *Server", srv.Config.Handler)
	}
	routes, ok := s.handler.(chi.Routes)
	if !ok {
		t.Fatalf("server's handler is %T; want a chi router", s.handler)
	}
	served := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// HEAD is documented through GET (every GET route answers it), so a HEAD route wired beside its GET route is
	// that one route; a HEAD route alone is not.
	for route := range served {
		if path, ok := strings.CutPrefix(route, "HEAD "); ok && served["GET "+path] {
			delete(served, route)
		}
	}
	return served
}

func specRoutes(doc *openapi3.T) map[string]bool {
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	return documented
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestRouterServesExactlyTheDocumentedRoutes(t *testing.T) {
	doc := loadSpec(t)
	// BenchFloor on, so the walk sees the benchmark route too and the test shows it is left out on purpose.
	srv, _ := newTestServer(t, Config{BenchFloor: true})
	served := servedRoutes(t, srv)
	documented := specRoutes(doc)

	for _, route := range sortedKeys(served) {
		t.Run("served "+route, func(t *testing.T) {
			if benchOnlyRoutes[route] {
				if documented[route] {
					t.Fatalf("%s is documented; it is benchmark-only and must stay out of api/openapi.yaml", route)
				}
				t.Skipf("%s is served only with Config.BenchFloor (a benchmark flag) and is deliberately not documented", route)
			}
			if !documented[route] {
				t.Errorf("the router serves %s but api/openapi.yaml does not document it", route)
			}
		})
	}
	for _, route := range sortedKeys(documented) {
		t.Run("documented "+route, func(t *testing.T) {
			if served[route] {
				return
			}
			if pendingRoutes[route] {
				t.Skipf("%s is documented but not wired in routes.go yet (being added by other work); "+
					"this check runs once it is", route)
			}
			t.Errorf("api/openapi.yaml documents %s but the router does not serve it", route)
		})
	}
}

// specHarness sends requests to a test server and checks each request and its answer against the document.
type specHarness struct {
	srv    *httptest.Server
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
}

var registerTextDecoders sync.Once

func newSpecHarness(t *testing.T, srv *httptest.Server) *specHarness {
	t.Helper()
	doc := loadSpec(t)
	// Route the document's paths on the test server's address.
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// kin-openapi reads JSON, YAML, text/plain and binary bodies out of the box; the web page and OpenMetrics are
	// text too.
	registerTextDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("application/openmetrics-text", openapi3filter.PlainBodyDecoder)
	})
	return &specHarness{srv: srv, doc: doc, router: router, opts: &openapi3filter.Options{
		// A status the document does not list for the operation is a mismatch, not a pass.
		IncludeResponseStatus: true,
		AuthenticationFunc:    bearerPresent,
	}}
}

// bearerPresent is the document's view of bearerAuth: the request carries a well-formed bearer token. Whether it
// is the right one is the server's business.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// specCase is one request and the status the server must answer it with.
type specCase struct {
	name        string
	method      string
	path        string
	contentType string
	token       string
	header      http.Header
	body        []byte
	status      int
	// specRefuses says the document itself rejects the request (a missing token, an undocumented content type, a
	// value out of bounds): ValidateRequest must fail, as the server does. Otherwise it must pass.
	specRefuses bool
}

func (h *specHarness) newRequest(t *testing.T, c specCase) *http.Request {
	t.Helper()
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	return req
}

// check sends the request, checks it and its answer against the document, and returns the answer's body.
func (h *specHarness) check(t *testing.T, c specCase) []byte {
	t.Helper()
	ctx := context.Background()
	req := h.newRequest(t, c)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.status {
		t.Fatalf("%s %s: status %d; want %d\n%s", c.method, c.path, resp.StatusCode, c.status, body)
	}

	vreq := h.newRequest(t, c) // the first one's body is spent
	route, pathParams, err := h.router.FindRoute(vreq)
	if err != nil {
		h.checkUnrouted(t, c, err, resp, body)
		return body
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: pathParams, Route: route, Options: h.opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case c.specRefuses && reqErr == nil:
		t.Errorf("%s %s: the document accepts the request; the server refuses it with %d, so should the document",
			c.method, c.path, resp.StatusCode)
	case !c.specRefuses && reqErr != nil:
		t.Errorf("%s %s: the document refuses the request: %v", c.method, c.path, reqErr)
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                h.opts,
	})
	if err != nil {
		t.Errorf("%s %s: the %d answer does not match the document: %v\nContent-Type: %s\n%.2000s",
			c.method, c.path, resp.StatusCode, err, resp.Header.Get("Content-Type"), body)
	}
	return body
}

// checkUnrouted checks the answer to a request that no documented operation matches: a 404 for an unknown path or
// a 405 for a known path's missing method, both as the document's shared responses describe them.
func (h *specHarness) checkUnrouted(t *testing.T, c specCase, routeErr error, resp *http.Response, body []byte) {
	t.Helper()
	var name string
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound) && c.status == http.StatusNotFound:
		name = "NotFound"
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) && c.status == http.StatusMethodNotAllowed:
		name = "MethodNotAllowed"
	default:
		t.Fatalf("%s %s: no documented operation: %v", c.method, c.path, routeErr)
	}
	ref := h.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("components/responses/%s is missing", name)
	}
	for hname, hdr := range ref.Value.Headers {
		if hdr.Value.Required && resp.Header.Get(hname) == "" {
			t.Errorf("%s %s: no %s header; components/responses/%s requires it", c.method, c.path, hname, name)
		}
	}
	ct := resp.Header.Get("Content-Type")
	mt := ref.Value.Content.Get(ct)
	if mt == nil {
		t.Fatalf("%s %s: Content-Type %q is not one components/responses/%s lists", c.method, c.path, ct, name)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", c.method, c.path, err)
	}
	if err := mt.Schema.Value.VisitJSON(v); err != nil {
		t.Errorf("%s %s: body does not match components/responses/%s: %v\n%s", c.method, c.path, name, err, body)
	}
}

func (h *specHarness) run(t *testing.T, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { h.check(t, c) })
	}
}

func TestResponsesMatchOpenAPI(t *testing.T) {
	srv, e := newTestServer(t, Config{MaxBodyBytes: 256 << 10, AdminFailLimit: 1000})
	h := newSpecHarness(t, srv)
	served := servedRoutes(t, srv)
	name, defaultVersion := e.Model().Name, e.Model().Version

	imgs := make([][]byte, 3)
	for i := range imgs {
		imgs[i], _ = digitPNG(t, i)
	}
	mp, mpType := multipartBody(t, map[string][][]byte{"image": imgs})
	b64 := []string{base64.StdEncoding.EncodeToString(imgs[0]), "data:image/png;base64," + base64.StdEncoding.EncodeToString(imgs[1])}
	jsonImages, _ := json.Marshal(map[string]any{"images": b64})
	row := make([]float64, 784)
	for j, p := range testDigits(t).Image(0) {
		row[j] = float64(p) / 255
	}
	jsonInputs, _ := json.Marshal(map[string]any{"inputs": [][]float64{row, row}})
	icon := []byte("\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00")
	fp32, _ := json.Marshal(map[string]any{"id": "r1", "inputs": []any{map[string]any{
		"name": "input", "shape": []int{2, 784}, "datatype": "FP32", "data": [][]float64{row, row}}}})
	bytesTensor, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "image", "shape": []int{2}, "datatype": "BYTES", "data": b64}},
		"outputs": []any{map[string]any{"name": "probabilities"}}})
	notImage, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "image", "shape": []int{1}, "datatype": "BYTES", "data": []string{base64.StdEncoding.EncodeToString([]byte("hello"))}}}})
	v2 := "/v2/models/" + name
	binHeader := `{"parameters":{"binary_data_output":true},"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`
	binBody := []byte(binHeader)
	for _, v := range row {
		binBody = binary.LittleEndian.AppendUint32(binBody, math.Float32bits(float32(v)))
	}

	t.Run("predict", func(t *testing.T) {
		h.run(t, []specCase{
			{name: "raw PNG", method: "POST", path: "/predict", contentType: "image/png", body: imgs[0], status: 200},
			{name: "multipart batch", method: "POST", path: "/predict?top_k=2", contentType: mpType, body: mp, status: 200},
			{name: "JSON images", method: "POST", path: "/predict", contentType: "application/json", body: jsonImages, status: 200},
			{name: "JSON inputs", method: "POST", path: "/predict?top_k=10", contentType: "application/json; charset=utf-8", body: jsonInputs, status: 200},
			{name: "debug", method: "POST", path: "/predict?debug=true", contentType: "image/png", body: imgs[0], status: 200},
			{name: "415 plain text", method: "POST", path: "/predict", contentType: "text/plain", body: []byte("seven"), status: 415, specRefuses: true},
			{name: "PNG as application/octet-stream", method: "POST", path: "/predict", contentType: "application/octet-stream", body: imgs[0], status: 200},
			{name: "PNG as curl's default form type", method: "POST", path: "/predict", contentType: "application/x-www-form-urlencoded", body: imgs[0], status: 200},
			{name: "415 a real form", method: "POST", path: "/predict", contentType: "application/x-www-form-urlencoded", body: []byte("digit=7&image=none"), status: 415},
			{name: "415 an icon", method: "POST", path: "/predict", contentType: "image/png", body: icon, status: 415},
			{name: "400 top_k zero", method: "POST", path: "/predict?top_k=0", contentType: "image/png", body: imgs[0], status: 400, specRefuses: true},
			{name: "400 malformed JSON", method: "POST", path: "/predict", contentType: "application/json", body: []byte(`{"images": [`), status: 400, specRefuses: true},
			{name: "400 both images and inputs", method: "POST", path: "/predict", contentType: "application/json", body: []byte(`{"images": ["AA=="], "inputs": [[0]]}`), status: 400, specRefuses: true},
			{name: "400 no images", method: "POST", path: "/predict", contentType: "application/json", body: []byte(`{"images": []}`), status: 400, specRefuses: true},
			{name: "413 body over the limit", method: "POST", path: "/predict", contentType: "image/png", body: make([]byte, 300<<10), status: 413},
			{name: "422 not an image", method: "POST", path: "/predict", contentType: "image/png", body: []byte("definitely not a png file"), status: 422},
			{name: "422 short input row", method: "POST", path: "/predict", contentType: "application/json", body: []byte(`{"inputs": [[0.5, 0.5]]}`), status: 422},
			{name: "405 GET", method: "GET", path: "/predict", status: 405},
			{name: "404 unknown route", method: "GET", path: "/nope", status: 404},
		})
	})

	t.Run("operations", func(t *testing.T) {
		h.run(t, []specCase{
			{name: "healthz", method: "GET", path: "/healthz", status: 200},
			{name: "readyz", method: "GET", path: "/readyz", status: 200, header: http.Header{"X-Request-Id": {"spec-check-1"}}},
			{name: "openapi.yaml", method: "GET", path: "/openapi.yaml", status: 200},
			{name: "metrics as Prometheus text", method: "GET", path: "/metrics", status: 200},
			{name: "metrics as OpenMetrics", method: "GET", path: "/metrics", status: 200,
				header: http.Header{"Accept": {"application/openmetrics-text;version=1.0.0"}}},
		})
		t.Run("web page", func(t *testing.T) {
			if !served["GET /"] && pendingRoutes["GET /"] {
				t.Skip("GET / (the web page) is not wired in routes.go yet (being added by other work); its check runs once it is")
			}
			h.check(t, specCase{name: "web page", method: "GET", path: "/", status: 200})
		})
	})

	t.Run("v2", func(t *testing.T) {
		h.run(t, []specCase{
			{name: "live", method: "GET", path: "/v2/health/live", status: 200},
			{name: "ready", method: "GET", path: "/v2/health/ready", status: 200},
			{name: "metadata", method: "GET", path: v2, status: 200},
			{name: "model ready", method: "GET", path: v2 + "/ready", status: 200},
			{name: "infer FP32", method: "POST", path: v2 + "/infer", contentType: "application/json", body: fp32, status: 200},
			{name: "infer BYTES", method: "POST", path: v2 + "/infer", contentType: "application/json", body: bytesTensor, status: 200},
			{name: "400 wrong shape", method: "POST", path: v2 + "/infer", contentType: "application/json",
				body: []byte(`{"inputs":[{"name":"input","shape":[1,10],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0]}]}`), status: 400},
			{name: "400 unsupported datatype", method: "POST", path: v2 + "/infer", contentType: "application/json",
				body: []byte(`{"inputs":[{"name":"input","shape":[1,784],"datatype":"INT8","data":[]}]}`), status: 400, specRefuses: true},
			{name: "422 not an image", method: "POST", path: v2 + "/infer", contentType: "application/json", body: notImage, status: 422},
			{name: "404 unknown model", method: "GET", path: "/v2/models/resnet", status: 404},
			{name: "404 infer on an unknown model", method: "POST", path: "/v2/models/resnet/infer", contentType: "application/json", body: fp32, status: 404},
			{name: "server metadata", method: "GET", path: "/v2", status: 200},
			{name: "version metadata", method: "GET", path: v2 + "/versions/" + defaultVersion, status: 200},
			{name: "version ready", method: "GET", path: v2 + "/versions/" + defaultVersion + "/ready", status: 200},
			{name: "version infer", method: "POST", path: v2 + "/versions/" + defaultVersion + "/infer", contentType: "application/json", body: fp32, status: 200},
			{name: "404 another version", method: "POST", path: v2 + "/versions/v0/infer", contentType: "application/json", body: fp32, status: 404},
			{name: "binary FP32 in and out", method: "POST", path: v2 + "/infer", contentType: "application/octet-stream",
				header: http.Header{"Inference-Header-Content-Length": {strconv.Itoa(len(binHeader))}}, body: binBody, status: 200},
			{name: "binary FP32 in and out, version route", method: "POST", path: v2 + "/versions/" + defaultVersion + "/infer", contentType: "application/octet-stream",
				header: http.Header{"Inference-Header-Content-Length": {strconv.Itoa(len(binHeader))}}, body: binBody, status: 200},
			{name: "400 binary sizes that do not add up", method: "POST", path: v2 + "/infer", contentType: "application/octet-stream",
				header: http.Header{"Inference-Header-Content-Length": {strconv.Itoa(len(binHeader))}}, body: binBody[:len(binBody)-4], status: 400},
			{name: "repository index", method: "POST", path: "/v2/repository/index", status: 200},
			{name: "repository index of ready models", method: "POST", path: "/v2/repository/index", contentType: "application/json", body: []byte(`{"ready": true}`), status: 200},
			{name: "400 repository index of an unknown field", method: "POST", path: "/v2/repository/index", contentType: "application/json", body: []byte(`{"state": "READY"}`), status: 400, specRefuses: true},
			{name: "404 unknown v2 path", method: "GET", path: "/v2/nope", status: 404},
			{name: "405 v2 method", method: "GET", path: v2 + "/infer", status: 405},
		})
	})

	t.Run("admin", func(t *testing.T) {
		h.run(t, []specCase{
			{name: "401 without a token", method: "GET", path: "/models", status: 401, specRefuses: true},
			{name: "401 with a wrong token", method: "GET", path: "/train", token: "wrong", status: 401},
			{name: "400 unknown field", method: "POST", path: "/train", token: testToken, contentType: "application/json", body: []byte(`{"epoch": 3}`), status: 400, specRefuses: true},
			{name: "422 too many epochs", method: "POST", path: "/train", token: testToken, contentType: "application/json", body: []byte(`{"epochs": 1000000}`), status: 422, specRefuses: true},
			{name: "422 unknown data set", method: "POST", path: "/train", token: testToken, contentType: "application/json", body: []byte(`{"dataset": "cats"}`), status: 422},
			{name: "404 unknown job", method: "GET", path: "/train/0123456789abcdef", token: testToken, status: 404},
			{name: "404 cancel an unknown job", method: "DELETE", path: "/train/0123456789abcdef", token: testToken, status: 404},
			{name: "404 unknown version", method: "GET", path: "/models/nope", token: testToken, status: 404},
			{name: "404 activate an unknown version", method: "POST", path: "/models/nope/activate", token: testToken, status: 404},
		})

		var job struct {
			ID           string `json:"id"`
			Status       string `json:"status"`
			ModelVersion string `json:"model_version"`
			Error        string `json:"error"`
		}
		body := h.check(t, specCase{name: "submit", method: "POST", path: "/train", token: testToken, contentType: "application/json",
			body: []byte(`{"hidden":[16],"epochs":1,"limit":1000}`), status: 202})
		if err := json.Unmarshal(body, &job); err != nil || job.ID == "" {
			t.Fatalf("POST /train answered %s", body)
		}
		// A second job waits behind the first (one runs at a time), so cancelling it is accepted at once.
		body = h.check(t, specCase{name: "submit another", method: "POST", path: "/train", token: testToken, status: 202})
		var other struct{ ID string }
		json.Unmarshal(body, &other)
		h.check(t, specCase{name: "cancel", method: "DELETE", path: "/train/" + other.ID, token: testToken, status: 202})

		t.Run("job until it ends", func(t *testing.T) {
			deadline := testwait.Deadline(t)
			for job.Status != "succeeded" && job.Status != "failed" {
				if time.Now().After(deadline) {
					t.Fatalf("job %s still %s", job.ID, job.Status)
				}
				time.Sleep(20 * time.Millisecond)
				body := h.check(t, specCase{method: "GET", path: "/train/" + job.ID, token: testToken, status: 200})
				json.Unmarshal(body, &job)
			}
			if job.Status != "succeeded" {
				t.Fatalf("job failed: %s", job.Error)
			}
		})
		h.run(t, []specCase{
			{name: "list jobs", method: "GET", path: "/train", token: testToken, status: 200},
			{name: "409 cancel a finished job", method: "DELETE", path: "/train/" + job.ID, token: testToken, status: 409},
			{name: "list models", method: "GET", path: "/models", token: testToken, status: 200},
			{name: "new model", method: "GET", path: "/models/" + job.ModelVersion, token: testToken, status: 200},
			{name: "default model", method: "GET", path: "/models/" + defaultVersion, token: testToken, status: 200},
			{name: "activate", method: "POST", path: "/models/" + job.ModelVersion + "/activate", token: testToken, status: 200},
			{name: "roll back", method: "POST", path: "/models/" + defaultVersion + "/activate", token: testToken, status: 200},
		})
	})

	t.Run("datasets", func(t *testing.T) {
		upload, uploadType := datasetUpload(t, imgs)
		body := h.check(t, specCase{name: "upload multipart", method: "POST", path: "/datasets", token: testToken, contentType: uploadType, body: upload, status: 201})
		var ds struct{ ID string }
		if err := json.Unmarshal(body, &ds); err != nil || ds.ID == "" {
			t.Fatalf("POST /datasets answered %s", body)
		}
		archive := datasetZip(t, imgs)
		both, bothType := multipartBody(t, map[string][][]byte{"archive": {archive}, "images": {{0}}, "labels": {{0}}})
		h.run(t, []specCase{
			{name: "upload a raw archive", method: "POST", path: "/datasets?name=raw&preprocess=resize", token: testToken, contentType: "application/zip", body: archive, status: 201},
			{name: "list", method: "GET", path: "/datasets", token: testToken, status: 200},
			{name: "one", method: "GET", path: "/datasets/" + ds.ID, token: testToken, status: 200},
			{name: "mnist", method: "GET", path: "/datasets/mnist", token: testToken, status: 200},
			{name: "train on it", method: "POST", path: "/train", token: testToken, contentType: "application/json",
				body: []byte(`{"dataset": "` + ds.ID + `", "hidden": [], "epochs": 1, "validation_split": 0, "activate": "never"}`), status: 202},
			{name: "400 archive and IDX parts", method: "POST", path: "/datasets", token: testToken, contentType: bothType, body: both, status: 400, specRefuses: true},
			{name: "415 plain text", method: "POST", path: "/datasets", token: testToken, contentType: "text/plain", body: []byte("cats"), status: 415, specRefuses: true},
			{name: "422 not an archive", method: "POST", path: "/datasets", token: testToken, contentType: "application/zip", body: []byte("not a zip"), status: 422},
			{name: "404 unknown", method: "GET", path: "/datasets/ds-0000000000000000", token: testToken, status: 404},
			{name: "401 without a token", method: "GET", path: "/datasets", status: 401, specRefuses: true},
		})
	})

	// Draining last: from here on the server refuses readiness.
	t.Run("draining", func(t *testing.T) {
		srv.Config.Handler.(*Server).Drain()
		h.run(t, []specCase{
			{name: "readyz", method: "GET", path: "/readyz", status: 503},
			{name: "v2 ready", method: "GET", path: "/v2/health/ready", status: 503},
		})
	})
}

// datasetZip builds a zip of two class folders of digit images.
func datasetZip(t *testing.T, imgs [][]byte) []byte {
	t.Helper()
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	for i, class := range []string{"left", "right", "left", "right"} {
		w, err := zw.Create(fmt.Sprintf("%s/%d.png", class, i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(imgs[i%len(imgs)])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return archive.Bytes()
}

// datasetUpload builds a multipart POST /datasets body: the archive of datasetZip, a name and a preprocessing.
func datasetUpload(t *testing.T, imgs [][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, err := mw.CreateFormFile("archive", "hands.zip")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(datasetZip(t, imgs))
	mw.WriteField("name", "hands")
	mw.WriteField("preprocess", "mnist")
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func TestRateLimitedAdminAnswerMatchesOpenAPI(t *testing.T) {
	srv, _ := newTestServer(t, Config{AdminFailLimit: 2})
	h := newSpecHarness(t, srv)
	for range 2 {
		h.check(t, specCase{method: "GET", path: "/models", token: "guess", status: 401})
	}
	h.check(t, specCase{method: "GET", path: "/models", token: "guess", status: 429})
	h.check(t, specCase{method: "GET", path: "/models", token: testToken, status: 200})
}
