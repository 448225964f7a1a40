package api

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// A 313 KB progressive CMYK JPEG of 6324x6324 needs about 0.9 GiB to decode: under a budget it could never fit in,
// it is refused at once with 413, before any pixel memory exists.
func TestPredictRefusesAnImageLargerThanTheMemoryBudget(t *testing.T) {
	mem := membudget.New(256 << 20)
	srv, _ := newTestServer(t, Config{Memory: mem})
	resp, body := post(t, srv.URL+"/predict", "image/jpeg", uploadtest.ProgressiveJPEG(6324, 6324, 4))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "MEMORY_LIMIT") {
		t.Fatalf("status %d %s; want 413 naming MEMORY_LIMIT", resp.StatusCode, body)
	}
	if mem.Peak() > 1<<20 || mem.Used() != 0 {
		t.Fatalf("budget peak %d, used %d; want nothing reserved for the pixels and all given back", mem.Peak(), mem.Used())
	}
}

// The same image fits a budget large enough for it, and is decoded inside it.
func TestPredictDecodesALargeImageWithinTheBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 40 megapixels")
	}
	mem := membudget.New(1200 << 20)
	srv, _ := newTestServer(t, Config{Memory: mem, PredictTimeout: time.Minute})
	resp, body := post(t, srv.URL+"/predict", "image/jpeg", uploadtest.ProgressiveJPEG(6324, 6324, 4))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s; want 200", resp.StatusCode, body)
	}
	if p := mem.Peak(); p < 900<<20 || p > mem.Size() {
		t.Fatalf("budget peak %d; want the image's real cost, about 0.9 GiB, within %d", p, mem.Size())
	}
}

// When other requests hold the budget, even a small image gets a fast 503 with Retry-After, not a queue.
func TestPredictAnswers503WhenTheBudgetIsInUse(t *testing.T) {
	mem := membudget.New(64 << 20)
	srv, _ := newTestServer(t, Config{Memory: mem})
	img, _ := digitPNG(t, 0)
	if resp, body := post(t, srv.URL+"/predict", "image/png", img); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the budget free: status %d %s; want 200", resp.StatusCode, body)
	}
	if err := mem.TryReserve(mem.Size()); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, srv.URL+"/predict", "image/png", img)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the budget held: status %d %s (Retry-After %q); want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	mem.Release(mem.Size())
	if resp, body := post(t, srv.URL+"/predict", "image/png", img); resp.StatusCode != http.StatusOK {
		t.Fatalf("after release: status %d %s; want 200", resp.StatusCode, body)
	}
}

// Stalled uploads hold only what they sent, and those beyond the budget are answered 503 while still stalled: 8
// bodies of 1 MiB, all but one byte sent, cannot make the server hold more than a 4 MiB budget.
func TestStalledBodiesCannotExceedTheBudget(t *testing.T) {
	const size = 1 << 20
	mem := membudget.New(4 << 20)
	srv, _ := newTestServer(t, Config{Memory: mem, MaxBodyBytes: 32 << 20})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused := 0
	for i := range 8 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(bytes.Repeat([]byte{'x'}, size-1))
		// Either the server has read it all and waits for the last byte, or it has answered 503; each stalled body
		// then shows in the budget. Wait for one of the two.
		done := make(chan *http.Response, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
			}
			done <- resp
		}()
		held := func() bool { return mem.Used() >= int64(i+1-refused)*(size-1) }
		for !held() {
			select {
			case resp := <-done:
				if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("body %d: answer %v; want 503 while stalled", i, resp)
				}
				refused++
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
		if mem.Used() > mem.Size() {
			t.Fatalf("budget used %d of %d", mem.Used(), mem.Size())
		}
	}
	if refused < 4 {
		t.Fatalf("%d of 8 stalled 1 MiB bodies refused under a 4 MiB budget; want at least 4", refused)
	}
}

// PREDICT_TIMEOUT covers decoding: once it has passed, the request ends with 504 naming the decoding, however many
// images are left.
func TestPredictTimeoutCoversDecoding(t *testing.T) {
	srv, _ := newTestServer(t, Config{Memory: membudget.New(256 << 20), PredictTimeout: time.Nanosecond})
	big := uploadtest.ProgressiveJPEG(2000, 2000, 3)
	body, ct := multipartBody(t, map[string][][]byte{"image": {big, big, big, big, big, big, big, big}})
	resp, out := post(t, srv.URL+"/predict", ct, body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(out), "decoding") {
		t.Fatalf("status %d %s; want 504 about decoding", resp.StatusCode, out)
	}
}

// A training request whose estimate is beyond the budget is refused with 422 when it is submitted, never accepted
// with 202 to fail later; the same request with a small network is accepted.
func TestTrainRefusesAJobThatCannotFitTheBudget(t *testing.T) {
	srv, _ := newTestServer(t, Config{Memory: membudget.New(768 << 20)})
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"hidden":[4096,4096,4096,4096],"optimizer":"lbfgs","epochs":1}`, http.StatusUnprocessableEntity},
		{`{"hidden":[2048,2048],"optimizer":"lbfgs","epochs":1}`, http.StatusUnprocessableEntity},
		{`{"hidden":[4096,4096,4096],"optimizer":"adam","batch_size":8192,"epochs":1}`, http.StatusUnprocessableEntity},
		{`{"hidden":[8],"optimizer":"lbfgs","epochs":1,"limit":100,"activate":"never"}`, http.StatusAccepted},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/train", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want == 422 && !strings.Contains(out.String(), "MEMORY_LIMIT")) {
			t.Errorf("%s: status %d %s; want %d", c.body, resp.StatusCode, out.String(), c.want)
		}
	}
}
