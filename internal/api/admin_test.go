package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/testwait"
)

func adminDo(t *testing.T, method, url, token string, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

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
	var last int
	for range 10 + 2 {
		resp, _ := adminDo(t, "GET", srv.URL+"/models", "guess", "")
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("after 12 failures: %d; want 429", last)
	}
	// The right token is refused too while the address is blocked: the limiter does not tell guesses apart.
	resp, _ := adminDo(t, "GET", srv.URL+"/models", testToken, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("blocked address with the right token: %d; want 429 with Retry-After", resp.StatusCode)
	}
}

func TestTrainJobLifecycleOverHTTP(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	before := e.Model().Version
	resp, body := adminDo(t, "POST", srv.URL+"/train", testToken,
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
		_, body = adminDo(t, "GET", srv.URL+"/train/"+job.ID, testToken, "")
		json.Unmarshal(body, &job)
	}
	if job.Status != "succeeded" || !job.Activated || len(job.History) != 2 {
		t.Fatalf("job %s: %s", job.Status, body)
	}
	if after := e.Model().Version; after == before || after != job.ModelVersionJSON {
		t.Errorf("serving %s after the job; want its model %s", after, job.ModelVersionJSON)
	}
	// The list shows it.
	_, body = adminDo(t, "GET", srv.URL+"/train", testToken, "")
	if !strings.Contains(string(body), job.ID) {
		t.Errorf("GET /train does not list %s", job.ID)
	}
	// Roll back to the embedded default.
	resp, body = adminDo(t, "POST", srv.URL+"/models/"+before+"/activate", testToken, "")
	if resp.StatusCode != http.StatusOK || e.Model().Version != before {
		t.Errorf("rollback: %d %s; serving %s", resp.StatusCode, body, e.Model().Version)
	}
	_, body = adminDo(t, "GET", srv.URL+"/models", testToken, "")
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
	resp, _ = adminDo(t, "DELETE", srv.URL+"/train/"+job.ID, testToken, "")
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
			resp, body := adminDo(t, tt.method, srv.URL+tt.path, testToken, tt.body)
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
	resp, body := adminDo(t, "POST", srv.URL+"/train", testToken, `{"hidden": [16], "epochs": 1, "limit": 2000, "activate": "never"}`)
	var job struct {
		ID, Status, Error string
		ModelVersion      string `json:"model_version"`
	}
	json.Unmarshal(body, &job)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	testwait.For(t, "the training job to succeed", func() bool {
		_, body = adminDo(t, "GET", srv.URL+"/train/"+job.ID, testToken, "")
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
			if resp, body := adminDo(t, "POST", srv.URL+"/models/"+v+"/activate", testToken, ""); resp.StatusCode != 200 {
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
