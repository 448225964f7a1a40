package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// hostile is one request built to break the service.
type hostile struct {
	name, method, path, contentType, auth string
	body                                  []byte
	status                                int
}

func multipartOf(parts ...[2]string) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		w, _ := mw.CreateFormFile(p[0], "f")
		w.Write([]byte(p[1]))
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func hostileRequests(t *testing.T) []hostile {
	img, _ := digitPNG(t, 0)
	var zeros bytes.Buffer
	// A real decompression bomb: 8000x8000 zero pixels compress to a few tens of kilobytes.
	png.Encode(&zeros, image.NewGray(image.Rect(0, 0, 8000, 8000)))
	hundreds, hundredsType := func() ([]byte, string) {
		parts := make([][2]string, 300)
		for i := range parts {
			parts[i] = [2]string{"image", string(img)}
		}
		return multipartOf(parts...)
	}()
	manyOther, manyOtherType := func() ([]byte, string) {
		parts := make([][2]string, 100)
		for i := range parts {
			parts[i] = [2]string{fmt.Sprintf("field%d", i), "x"}
		}
		return multipartOf(parts...)
	}()
	zeroPart, zeroPartType := multipartOf([2]string{"image", ""})
	textPart, textPartType := multipartOf([2]string{"image", "this is not an image"})
	truncatedPart, truncatedPartType := multipartOf([2]string{"image", string(img[:len(img)-30])})
	b64 := func(data []byte) []byte {
		j, _ := json.Marshal(map[string][]string{"images": {base64.StdEncoding.EncodeToString(data)}})
		return j
	}
	deep := []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000))
	nan784 := []byte(`{"inputs": [[` + strings.Repeat("0,", 783) + `"NaN"]]}`)
	huge := []byte(`{"inputs": [[` + strings.Repeat("0.5,", 300000) + `0.5]]}`) // 1.2 MB of numbers

	return []hostile{
		// Decompression bombs and lying headers in every supported format.
		{"PNG claiming 100000x100000", "POST", "/predict", "image/png", "", uploadtest.PNGHeader(100000, 100000), 413},
		{"PNG claiming 2^31-1 squared", "POST", "/predict", "image/png", "", uploadtest.PNGHeader(1<<31-1, 1<<31-1), 413},
		{"PNG bomb of 64 million real zero pixels", "POST", "/predict", "image/png", "", zeros.Bytes(), 413},
		{"PNG bomb as base64 JSON", "POST", "/predict", "application/json", "", b64(zeros.Bytes()), 413},
		{"PNG with a header and no pixels", "POST", "/predict", "image/png", "", uploadtest.PNGHeader(10, 10), 422},
		{"PNG claiming 0x0", "POST", "/predict", "image/png", "", uploadtest.PNGHeader(0, 0), 422},
		{"GIF with a 65535x65535 screen", "POST", "/predict", "image/gif", "", uploadtest.GIFScreen(65535, 65535), 413},
		{"TIFF claiming 1000000x1000000", "POST", "/predict", "image/tiff", "", uploadtest.TIFFHeader(1000000, 1000000, 1), 413},
		{"TIFF whose strip claims 4 GB", "POST", "/predict", "image/tiff", "", uploadtest.TIFFHeader(16, 16, 1<<32-1), 422},
		{"BMP claiming 100000x100000", "POST", "/predict", "image/bmp", "", uploadtest.BMPHeader(100000, 100000), 413},
		{"BMP claiming a top-down 100000x100000", "POST", "/predict", "image/bmp", "", uploadtest.BMPHeader(100000, -100000), 413},
		{"JPEG claiming 65535x65535", "POST", "/predict", "image/jpeg", "", uploadtest.JPEGHeader(65535, 65535), 413},
		{"JPEG of 5000 empty scans", "POST", "/predict", "image/jpeg", "", uploadtest.ManyScans(), 422},
		{"WebP claiming a 16384x16384 canvas", "POST", "/predict", "image/webp", "", uploadtest.WebPCanvas(16384, 16384), 413},
		// Truncated and wrong bodies.
		{"truncated PNG", "POST", "/predict", "image/png", "", img[:len(img)/3], 422},
		{"PNG cut before its last chunk", "POST", "/predict", "image/png", "", img[:len(img)-12], 422},
		{"zero-byte body", "POST", "/predict", "image/png", "", nil, 422},
		{"zero-byte part", "POST", "/predict", zeroPartType, "", zeroPart, 422},
		{"text part", "POST", "/predict", textPartType, "", textPart, 422},
		{"truncated part", "POST", "/predict", truncatedPartType, "", truncatedPart, 422},
		{"hundreds of image parts", "POST", "/predict", hundredsType, "", hundreds, 413},
		{"a hundred non-image parts", "POST", "/predict", manyOtherType, "", manyOther, 400},
		{"body declared as an image, holding JSON", "POST", "/predict", "image/png", "", []byte(`{"inputs": []}`), 422},
		{"JSON declared as XML", "POST", "/predict", "application/xml", "", []byte(`{"inputs": []}`), 415},
		{"Content-Type with a broken parameter", "POST", "/predict", "multipart/form-data; boundary=\"", "", img, 400},
		{"multipart with a boundary that never appears", "POST", "/predict", "multipart/form-data; boundary=nothere", "", img, 400},
		// JSON: NaN, infinities, enormous and deeply nested documents.
		{"NaN as a string in inputs", "POST", "/predict", "application/json", "", nan784, 400},
		{"infinity in inputs", "POST", "/predict", "application/json", "", []byte(`{"inputs": [[1e400]]}`), 400},
		{"negative infinity in inputs", "POST", "/predict", "application/json", "", []byte(`{"inputs": [[-1e400]]}`), 400},
		{"a row of 300,000 numbers", "POST", "/predict", "application/json", "", huge, 422},
		{"100,000 nested arrays", "POST", "/predict", "application/json", "", deep, 400},
		{"images of the wrong type", "POST", "/predict", "application/json", "", []byte(`{"images": [1, 2, 3]}`), 400},
		{"inputs as an object", "POST", "/predict", "application/json", "", []byte(`{"inputs": {"a": 1}}`), 400},
		{"null among the inputs", "POST", "/predict", "application/json", "", []byte(`{"inputs": [[null` + strings.Repeat(",0", 783) + `]]}`), 400},
		{"a number beyond float64 among 784", "POST", "/predict", "application/json", "", []byte(`{"inputs": [[1e999` + strings.Repeat(",0", 783) + `]]}`), 400},
		{"v2 FP32 NaN", "POST", "/v2/models/mnist-mlp/infer", "application/json", "", []byte(`{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":["NaN"]}]}`), 400},
		{"v2 shape of a billion rows", "POST", "/v2/models/mnist-mlp/infer", "application/json", "", []byte(`{"inputs":[{"name":"input","shape":[1000000000,784],"datatype":"FP32","data":[]}]}`), 413},
		{"v2 negative shape", "POST", "/v2/models/mnist-mlp/infer", "application/json", "", []byte(`{"inputs":[{"name":"input","shape":[-1,784],"datatype":"FP32","data":[]}]}`), 400},
		// Path traversal in every path parameter.
		{"traversal in a job id", "GET", "/train/..%2F..%2F..%2Fetc%2Fpasswd", "", testToken, nil, 404},
		{"traversal in a cancelled job id", "DELETE", "/train/..%2Fjobs", "", testToken, nil, 404},
		{"traversal in a model version", "GET", "/models/..%2F..%2FACTIVE", "", testToken, nil, 404},
		{"traversal in an activation", "POST", "/models/..%2F..%2F..%2Fetc%2Fpasswd/activate", "", testToken, nil, 404},
		{"traversal in a data set id", "GET", "/datasets/..%2F..%2Fmnist", "", testToken, nil, 404},
		{"traversal in a v2 model name", "GET", "/v2/models/..%2F..%2Fetc", "", "", nil, 404},
		{"a version full of dots", "GET", "/models/....", "", testToken, nil, 404},
		// Tokens: missing, wrong, malformed, oversized.
		{"no token", "GET", "/models", "", "", nil, 401},
		{"wrong token", "GET", "/models", "", "wrong", nil, 401},
		{"token with a space", "GET", "/models", "", "a b", nil, 401},
		{"a 100 KB token", "GET", "/models", "", strings.Repeat("x", 100<<10), nil, 401},
		{"Basic instead of Bearer", "POST", "/train", "application/json", "Basic:" + testToken, []byte(`{}`), 401},
		// Training requests that would need absurd memory or time.
		{"a million hidden units", "POST", "/train", "application/json", testToken, []byte(`{"hidden": [1000000]}`), 422},
		{"a thousand layers", "POST", "/train", "application/json", testToken, []byte(`{"hidden": [` + strings.Repeat("8,", 999) + `8]}`), 422},
		{"a billion epochs", "POST", "/train", "application/json", testToken, []byte(`{"epochs": 1000000000}`), 422},
		{"learning rate NaN", "POST", "/train", "application/json", testToken, []byte(`{"learning_rate": "NaN"}`), 400},
		{"training on a path", "POST", "/train", "application/json", testToken, []byte(`{"dataset": "../../etc"}`), 422},
		{"a training request of null", "POST", "/train", "application/json", testToken, []byte(`null`), 400},
		{"a training request of a no-break space", "POST", "/train", "application/json", testToken, []byte("\u00a0"), 400},
		{"a training request that is an array", "POST", "/train", "application/json", testToken, []byte(` [{}]`), 400},
		{"a training request followed by another", "POST", "/train", "application/json", testToken, []byte(`{} {}`), 400},
	}
}

// TestHostileRequests sends every hostile request above to a live server: each must get its 4xx problem (or v2
// error) without hanging, the heap must not grow past a bound, and the server must stay healthy throughout.
func TestHostileRequests(t *testing.T) {
	srv, _ := newTestServer(t, Config{MaxBodyBytes: 4 << 20, MaxImages: 64, AdminFailLimit: 1000})
	reqs := hostileRequests(t)
	if len(reqs) < 40 {
		t.Fatalf("only %d hostile requests", len(reqs))
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var slowest time.Duration
	var slowestName string
	for _, h := range reqs {
		t.Run(h.name, func(t *testing.T) {
			// A hang is caught by the test's deadline, not by a fixed time: a loaded machine may be slow.
			ctx, cancel := context.WithDeadline(context.Background(), testwait.Deadline(t))
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, h.method, srv.URL+h.path, bytes.NewReader(h.body))
			if h.contentType != "" {
				req.Header.Set("Content-Type", h.contentType)
			}
			switch {
			case strings.HasPrefix(h.auth, "Basic:"):
				req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+h.auth[6:])))
			case h.auth != "":
				req.Header.Set("Authorization", "Bearer "+h.auth)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if d := time.Since(start); d > slowest {
				slowest, slowestName = d, h.name
			}
			if resp.StatusCode != h.status {
				t.Errorf("status %d (%s); want %d", resp.StatusCode, body, h.status)
			}
			ct := resp.Header.Get("Content-Type")
			if strings.HasPrefix(h.path, "/v2/") {
				if !strings.Contains(string(body), `"error"`) {
					t.Errorf("v2 error body %s lacks \"error\"", body)
				}
			} else if ct != "application/problem+json" {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
		})
	}
	t.Logf("slowest answer: %v for %s", slowest.Round(time.Millisecond), slowestName)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Errorf("heap in use grew by %d MB over the hostile requests", grown>>20)
	}
	// Still healthy and still right.
	img, label := digitPNG(t, 0)
	resp, body := post(t, srv.URL+"/predict", "image/png", img)
	if out := decodePredictions(t, resp, body); out.Predictions[0].Index != label {
		t.Errorf("after the hostile requests the server predicts %d for a %d", out.Predictions[0].Index, label)
	}
}
