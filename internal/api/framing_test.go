package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// rawRequest writes head (the request line and headers, without the blank line) and body on a new connection to
// srvURL, and returns the connection and a reader of its answers.
func rawRequest(t *testing.T, srvURL, head, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(testwait.Deadline(t))
	if _, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// TestExpectContinueOverTheLimitIsRefusedAtOnce sends only the headers of requests that declare a body over the
// route's limit and ask "Expect: 100-continue": the first answer must be 413, never "100 Continue" (which would ask
// for the whole body first). A body within the limit gets its 100, so the test tells the two apart.
func TestExpectContinueOverTheLimitIsRefusedAtOnce(t *testing.T) {
	const limit = 64 << 10
	ts := newTestStack(t, Config{MaxBodyBytes: limit})
	infer := "/v2/models/" + ts.engine.Model().Name + "/infer"
	datasets := ts.server.datasetBodyLimit()
	for _, tt := range []struct {
		name, path, extra string
		length            int64
		want              int
	}{
		{"/predict over MAX_BODY_BYTES", "/predict", "Content-Type: image/png", limit + 1, 413},
		{"/predict within MAX_BODY_BYTES", "/predict", "Content-Type: image/png", limit, 100},
		{"/v2 infer over MAX_BODY_BYTES", infer, "Content-Type: application/json", limit + 1, 413},
		{"/train over its 64 KiB", "/train", "Content-Type: application/json\nAuthorization: Bearer " + testToken, maxTrainBody + 1, 413},
		{"/train without a token is 401 before anything", "/train", "Content-Type: application/json", maxTrainBody + 1, 401},
		{"/datasets over the archive limit", "/datasets", "Content-Type: application/zip\nAuthorization: Bearer " + testToken, datasets + 1, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			head := fmt.Sprintf("POST %s HTTP/1.1\nHost: test\nExpect: 100-continue\nContent-Length: %d\n%s", tt.path, tt.length, tt.extra)
			_, br := rawRequest(t, ts.srv.URL, head, "")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("first answer %s; want %d", resp.Status, tt.want)
			}
			if tt.want != 413 {
				return
			}
			var body struct{ Error, Detail string }
			json.NewDecoder(resp.Body).Decode(&body)
			if msg := body.Detail + body.Error; !strings.Contains(msg, "larger than") {
				t.Errorf("body %+v; want a message saying the body is larger than the limit", body)
			}
			if strings.HasPrefix(tt.path, "/v2/") != (body.Error != "") {
				t.Errorf("body %+v; want {\"error\"} on /v2 and problem+json elsewhere", body)
			}
		})
	}
}

// TestChunkedRequestsCloseTheConnection sends a request with both Content-Length and Transfer-Encoding, then
// another request on the same connection. The body is read by Transfer-Encoding (Go's server does so and deletes
// both headers), the answer says Connection: close, and the second request is never answered: a proxy in front that
// framed the first by Content-Length cannot smuggle a request through.
func TestChunkedRequestsCloseTheConnection(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	head := "POST /predict HTTP/1.1\nHost: test\nContent-Type: application/json\nContent-Length: 5\nTransfer-Encoding: chunked"
	chunk := `{"inputs": []}`
	body := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk) + "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
	c, br := rawRequest(t, srv.URL, head, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The chunked body was read: "no images" is its complaint; the first 5 bytes alone would be malformed JSON.
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(data), "no images") {
		t.Errorf("%s %s; want 400 saying no images (the chunked body)", resp.Status, data)
	}
	if !resp.Close {
		t.Error("the answer does not close the connection")
	}
	c.SetReadDeadline(time.Now().Add(testwait.Timeout(t)))
	if second, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("the request after it was answered %s; want the connection closed", second.Status)
	}
}
