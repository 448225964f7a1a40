package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

func TestAdminRoutesRefuseMissingWrongAndMalformedTokens(t *testing.T) {
	srv, _ := newTestServer(t, Config{AdminFailLimit: 1000})
	routes := []struct{ method, path string }{
		{"POST", "/train"}, {"GET", "/train"}, {"GET", "/train/0123456789abcdef"}, {"DELETE", "/train/0123456789abcdef"},
		{"GET", "/models"}, {"GET", "/models/x"}, {"POST", "/models/x/activate"},
	}
	for _, rt := range routes {
		for _, auth := range []string{"", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "Bearer " + testToken + "x", "bearer  "} {
			req, _ := http.NewRequest(rt.method, srv.URL+rt.path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %q: %d, WWW-Authenticate %q; want 401 with a Bearer challenge",
					rt.method, rt.path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
}

func TestFailedAdminAttemptsAreRateLimited(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	var last *http.Response
	for range 10 + 2 {
		last, _ = apitest.Do(t, "GET", srv.URL+"/models", "guess", "")
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("after 12 failures: %d; want 429 with Retry-After", last.StatusCode)
	}
	// The right token passes from the same address: limiting guesses must not lock the operators out.
	for range 3 {
		if resp, body := apitest.Do(t, "GET", srv.URL+"/models", testToken, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("the right token from a blocked address: %d %s; want 200", resp.StatusCode, body)
		}
	}
	// Success does not lift the block for guesses.
	if resp, _ := apitest.Do(t, "GET", srv.URL+"/models", "guess", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a wrong token after a success: %d; want 429", resp.StatusCode)
	}
}

// TestAdminFailuresAreCountedPerForwardedClientOnlyBehindTrustedProxies sends failures through a proxy on the
// loopback address: with the proxy trusted, each forwarded client has its own count; without, the headers are the
// client's word and ignored, so changing them escapes nothing.
func TestAdminFailuresAreCountedPerForwardedClientOnlyBehindTrustedProxies(t *testing.T) {
	send := func(t *testing.T, url, header, value string) int {
		req, _ := http.NewRequest("GET", url+"/models", nil)
		req.Header.Set("Authorization", "Bearer guess")
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, header := range []string{"X-Forwarded-For", "Forwarded"} {
		hop := func(ip string) string {
			if header == "Forwarded" {
				return "for=" + ip
			}
			return ip
		}
		t.Run(header+" from a trusted proxy names the client", func(t *testing.T) {
			srv, _ := newTestServer(t, Config{AdminFailLimit: 2, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			for range 3 {
				send(t, srv.URL, header, hop("198.51.100.7"))
			}
			if got := send(t, srv.URL, header, hop("198.51.100.7")); got != http.StatusTooManyRequests {
				t.Errorf("the client that failed 3 times: %d; want 429", got)
			}
			if got := send(t, srv.URL, header, hop("198.51.100.8")); got != http.StatusUnauthorized {
				t.Errorf("another client behind the same proxy: %d; want 401", got)
			}
		})
		t.Run(header+" from an untrusted peer is ignored", func(t *testing.T) {
			srv, _ := newTestServer(t, Config{AdminFailLimit: 2})
			for range 3 {
				send(t, srv.URL, header, hop("198.51.100.7"))
			}
			if got := send(t, srv.URL, header, hop("198.51.100.9")); got != http.StatusTooManyRequests {
				t.Errorf("a new forwarding header from the same peer: %d; want 429", got)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tt := range []struct {
		name, remote string
		trusted      []netip.Prefix
		header       map[string][]string
		want         string
	}{
		{"no trusted proxies: the peer, whatever the headers say", "203.0.113.5:4711", nil,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.5"},
		{"an untrusted peer: the peer", "203.0.113.5:4711", trusted,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.5"},
		{"a trusted peer: the last X-Forwarded-For entry", "10.0.0.2:80", trusted,
			map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1"}}, "198.51.100.1"},
		{"a chain of trusted proxies is walked from the right", "10.0.0.2:80", trusted,
			map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1", "10.1.1.1"}}, "198.51.100.1"},
		{"a trusted peer without headers: the peer", "10.0.0.2:80", trusted, nil, "10.0.0.2"},
		{"an unreadable entry stops at the nearest trusted proxy", "10.0.0.2:80", trusted,
			map[string][]string{"X-Forwarded-For": {"198.51.100.1, unknown"}}, "10.0.0.2"},
		{"Forwarded wins over X-Forwarded-For", "10.0.0.2:80", trusted,
			map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43`}, "X-Forwarded-For": {"6.6.6.6"}}, "192.0.2.60"},
		{"Forwarded with a quoted IPv6 address and port", "[2001:db8::2]:80", trusted,
			map[string][]string{"Forwarded": {`for=192.0.2.43, for="[2001:db9::17]:4711"`}}, "2001:db9::17"},
		{"Forwarded for an obfuscated name stops at the proxy", "10.0.0.2:80", trusted,
			map[string][]string{"Forwarded": {`for=_hidden`}}, "10.0.0.2"},
		{"an IPv4-mapped peer counts as IPv4", "[::ffff:203.0.113.5]:1", nil, nil, "203.0.113.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/models", nil)
			r.RemoteAddr = tt.remote
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := clientAddr(r, tt.trusted); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

// FuzzClientAddr checks that forwarding headers from a trusted peer never crash the reader and always give an
// address: one of the headers' own, or the peer's.
func FuzzClientAddr(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.3", `for=192.0.2.43, for="[2001:db8::17]:4711";proto=https`)
	f.Add("unknown", "for=_hidden;by=x")
	f.Add(",,,", `for="`)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.2:80"
		r.Header["X-Forwarded-For"] = []string{xff}
		if fwd != "" {
			r.Header["Forwarded"] = []string{fwd}
		}
		got := clientAddr(r, trusted)
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("clientAddr gave %q, not an address", got)
		}
		hops := forwardedHops(r.Header)
		if len(hops) > maxHops {
			t.Fatalf("%d hops read; want at most %d", len(hops), maxHops)
		}
		if got == "10.0.0.2" {
			return
		}
		for _, h := range hops {
			if a, ok := parseHop(h); ok && a.String() == got {
				return
			}
		}
		t.Fatalf("clientAddr gave %s, neither the peer nor an entry of the headers %q", got, hops)
	})
}

// TestFailureLimiterMemoryIsBounded fails from many more addresses than the limiter counts one by one: its records
// stay bounded, the overflow shares one limit, and expired records are forgotten.
func TestFailureLimiterMemoryIsBounded(t *testing.T) {
	f := failures{limit: 2, max: 100}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	blockedAt := -1
	for i := range 10_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		if blocked, _ := f.fail(ip, now); blocked && blockedAt < 0 {
			blockedAt = i
		}
	}
	if n := f.tracked(); n != 100 {
		t.Errorf("%d addresses tracked after failures from 10,000; want the bound, 100", n)
	}
	if blockedAt != 102 {
		t.Errorf("the first address refused was number %d; want 102 (100 tracked, then 2 in the shared overflow)", blockedAt)
	}
	if blocked, _ := f.fail("192.0.2.1", now.Add(failWindow+time.Second)); blocked {
		t.Error("a new address after the window is refused; want its failure counted")
	}
	if n := f.tracked(); n != 1 {
		t.Errorf("%d addresses tracked once the window passed; want 1", n)
	}
}
func TestTrainJobLifecycleOverHTTP(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	before := e.Model().Version
	resp, body := apitest.Do(t, "POST", srv.URL+"/train", testToken,
		`{"hidden": [32], "epochs": 2, "limit": 3000, "activate": "always"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /train: %d %s", resp.StatusCode, body)
	}
	var job struct {
		ID, Status, ModelVersion string
		Activated                bool
		History                  []json.RawMessage
		Error                    string
		ModelVersionJSON         string `json:"model_version"`
	}
	json.Unmarshal(body, &job)
	if loc := resp.Header.Get("Location"); loc != "/train/"+job.ID || job.Status != "queued" {
		t.Fatalf("Location %q, job %+v", loc, job)
	}
	deadline := testwait.Deadline(t)
	for job.Status != "succeeded" && job.Status != "failed" {
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", job.Status)
		}
		time.Sleep(20 * time.Millisecond)
		_, body = apitest.Do(t, "GET", srv.URL+"/train/"+job.ID, testToken, "")
		json.Unmarshal(body, &job)
	}
	if job.Status != "succeeded" || !job.Activated || len(job.History) != 2 {
		t.Fatalf("job %s: %s", job.Status, body)
	}
	if after := e.Model().Version; after == before || after != job.ModelVersionJSON {
		t.Errorf("serving %s after the job; want its model %s", after, job.ModelVersionJSON)
	}
	// The list shows it.
	_, body = apitest.Do(t, "GET", srv.URL+"/train", testToken, "")
	if !strings.Contains(string(body), job.ID) {
		t.Errorf("GET /train does not list %s", job.ID)
	}
	// Roll back to the embedded default.
	resp, body = apitest.Do(t, "POST", srv.URL+"/models/"+before+"/activate", testToken, "")
	if resp.StatusCode != http.StatusOK || e.Model().Version != before {
		t.Errorf("rollback: %d %s; serving %s", resp.StatusCode, body, e.Model().Version)
	}
	_, body = apitest.Do(t, "GET", srv.URL+"/models", testToken, "")
	var models struct {
		Serving string
		Models  []struct {
			Version string
			Active  bool
			Source  string
			Metrics map[string]any
		}
	}
	json.Unmarshal(body, &models)
	if models.Serving != before || len(models.Models) != 2 {
		t.Errorf("GET /models: %s", body)
	}
	// Cancelling a finished job conflicts.
	resp, _ = apitest.Do(t, "DELETE", srv.URL+"/train/"+job.ID, testToken, "")
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("DELETE of a finished job: %d; want 409", resp.StatusCode)
	}
}

func TestAdminRequestErrors(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"malformed JSON", "POST", "/train", `{"epochs": `, 400},
		{"unknown field", "POST", "/train", `{"epoch": 3}`, 400},
		{"wrong type", "POST", "/train", `{"epochs": "three"}`, 400},
		{"absurd width", "POST", "/train", `{"hidden": [100000]}`, 422},
		{"too many epochs", "POST", "/train", `{"epochs": 1000000}`, 422},
		{"unknown optimizer", "POST", "/train", `{"optimizer": "magic"}`, 422},
		{"unknown data set", "POST", "/train", `{"dataset": "cats"}`, 422},
		{"huge body", "POST", "/train", `{"hidden": [` + strings.Repeat("1,", 40000) + `1]}`, 413},
		{"unknown job", "GET", "/train/0123456789abcdef", "", 404},
		{"traversal in job id", "GET", "/train/..%2F..%2Fetc%2Fpasswd", "", 404},
		{"unknown version", "GET", "/models/nope", "", 404},
		{"traversal in version", "GET", "/models/..%2F..%2Fetc%2Fpasswd", "", 404},
		{"activate unknown version", "POST", "/models/nope/activate", "", 404},
		{"activate traversal", "POST", "/models/..%2FACTIVE/activate", "", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := apitest.Do(t, tt.method, srv.URL+tt.path, testToken, tt.body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%d %s; want %d problem+json", resp.StatusCode, body, tt.status)
			}
		})
	}
}

// TestLiveSwapUnderLoadLosesNothing activates versions back and forth while clients keep predicting: every request
// must succeed, and each answer names one of the two versions. The clients keep going until both versions have
// answered (and at least minRequests were made), however slowly the swaps come on a loaded machine, so the test
// depends on events, not on how many requests fit between two swaps.
func TestLiveSwapUnderLoadLosesNothing(t *testing.T) {
	const minRequests = 400
	srv, e := newTestServer(t, Config{})
	first := e.Model().Version
	resp, body := apitest.Do(t, "POST", srv.URL+"/train", testToken, `{"hidden": [16], "epochs": 1, "limit": 2000, "activate": "never"}`)
	var job struct {
		ID, Status, Error string
		ModelVersion      string `json:"model_version"`
	}
	json.Unmarshal(body, &job)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	testwait.For(t, "the training job to succeed", func() bool {
		_, body = apitest.Do(t, "GET", srv.URL+"/train/"+job.ID, testToken, "")
		json.Unmarshal(body, &job)
		if job.Status == "failed" {
			t.Fatal(job.Error)
		}
		return job.Status == "succeeded"
	})
	second := job.ModelVersion
	img, _ := digitPNG(t, 0)
	stop := make(chan struct{})
	var swaps sync.WaitGroup
	swaps.Go(func() {
		// The first activation switches to the second version: the first one is serving already.
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := map[bool]string{true: second, false: first}[i%2 == 0]
			if resp, body := apitest.Do(t, "POST", srv.URL+"/models/"+v+"/activate", testToken, ""); resp.StatusCode != 200 {
				t.Errorf("activate %s: %d %s", v, resp.StatusCode, body)
			}
		}
	})
	deadline := testwait.Deadline(t)
	var wg sync.WaitGroup
	var sent, ok, seenFirst, seenSecond atomic.Int64
	done := func() bool {
		return sent.Load() >= minRequests && seenFirst.Load() > 0 && seenSecond.Load() > 0 || time.Now().After(deadline)
	}
	for range 8 {
		wg.Go(func() {
			for !done() {
				sent.Add(1)
				resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(img))
				if err != nil {
					t.Error(err)
					return
				}
				var out predictResponse
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d during swaps", resp.StatusCode)
					continue
				}
				ok.Add(1)
				switch out.Model.Version {
				case first:
					seenFirst.Add(1)
				case second:
					seenSecond.Add(1)
				default:
					t.Errorf("answer from unknown version %q", out.Model.Version)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	swaps.Wait()
	if ok.Load() != sent.Load() || seenFirst.Load() == 0 || seenSecond.Load() == 0 {
		t.Errorf("%d of %d requests succeeded; %d answered by %s, %d by %s", ok.Load(), sent.Load(), seenFirst.Load(), first, seenSecond.Load(), second)
	}
}
