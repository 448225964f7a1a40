package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// startServer runs the whole program in-process on a free loopback port and returns its base URL and a function
// that stops it (as SIGTERM would) and returns run's error.
func startServer(t *testing.T, env map[string]string, args ...string) (base string, stop func() error) {
	t.Helper()
	base, _, stop, _ = startServerFull(t, env, args...)
	return base, stop
}

// startServerGRPC is startServer that also returns the gRPC listener's address ("" when GRPC_ADDR is off).
func startServerGRPC(t *testing.T, env map[string]string, args ...string) (base, grpcAddr string, stop func() error) {
	t.Helper()
	base, grpcAddr, stop, _ = startServerFull(t, env, args...)
	return base, grpcAddr, stop
}

// startServerLog is startServer that also returns what the server wrote to stderr (its log).
func startServerLog(t *testing.T, env map[string]string, args ...string) (base string, stop func() error, stderr *syncBuffer) {
	t.Helper()
	base, _, stop, stderr = startServerFull(t, env, args...)
	return base, stop, stderr
}

// startServerFull is startServer with everything it knows: the gRPC address and the server's log.
func startServerFull(t *testing.T, env map[string]string, args ...string) (base, grpcAddr string, stop func() error, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return map[string]string{"ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0", "MODEL_DIR": t.TempDir(), "DATA_DIR": t.TempDir(), "LOG_LEVEL": "warn",
			// Training at the lowest priority waits while the machine is busy; the tests must finish on a loaded one.
			"TRAIN_PRIORITY": "normal"}[k]
	}
	pr, pw := io.Pipe()
	stderr = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"server"}, args...), getenv, strings.NewReader(""), pw, stderr)
		pw.Close()
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	addr, grpcLine := make(chan string, 1), make(chan string, 1)
	go func() {
		for lines.Scan() {
			if a, ok := strings.CutPrefix(lines.Text(), "perceptron listening on "); ok {
				addr <- a
			}
			if a, ok := strings.CutPrefix(lines.Text(), "perceptron gRPC listening on "); ok {
				grpcLine <- a
			}
		}
		close(addr)
		close(grpcLine)
	}()
	select {
	case base = <-addr:
	case err := <-done:
		t.Fatalf("server exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("server did not start listening")
	}
	if base == "" {
		t.Fatalf("server exited: %s", stderr.String())
	}
	// The gRPC listener starts after the HTTP ones, and prints its line before serve waits for a signal.
	if a := getenv("GRPC_ADDR"); a != "" && a != "off" {
		select {
		case grpcAddr = <-grpcLine:
		case <-time.After(testwait.Timeout(t)):
			t.Fatal("gRPC did not start listening")
		}
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(testwait.Timeout(t)):
				t.Error("server did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return base, grpcAddr, stop, stderr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mnistPNG(t *testing.T, i int) (data []byte, label int) { return mnisttest.PNG(t, i) }

func TestServeAnswersHealthAndPredictions(t *testing.T) {
	base, stop := startServer(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d; want 200", path, resp.StatusCode)
		}
	}
	img, label := mnistPNG(t, 0)
	resp, err := http.Post(base+"/predict", "image/png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Model       struct{ Name, Version string }
		Predictions []struct{ Index int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(out.Predictions) != 1 || out.Predictions[0].Index != label {
		t.Errorf("POST /predict: %d %+v; want 200 predicting %d", resp.StatusCode, out, label)
	}
	if out.Model.Name == "" || out.Model.Version == "" {
		t.Errorf("response names no model: %+v", out.Model)
	}
	if err := stop(); err != nil {
		t.Errorf("run returned %v after SIGTERM; want nil", err)
	}
}

func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	// A drain delay holds the listener open after SIGTERM while /readyz fails.
	base, stop := startServer(t, map[string]string{"DRAIN_DELAY": "300ms"})
	img, _ := mnistPNG(t, 1)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d; want 503", resp.StatusCode)
	}
	if !resp.Close {
		t.Errorf("responses while draining lack Connection: close")
	}
	resp, err = http.Post(base+"/predict", "image/png", bytes.NewReader(img))
	if err != nil {
		t.Fatalf("a request during the drain window failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/predict while draining: %d; want 200", resp.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run returned %v; want nil", err)
	}
}

// TestStartupLogShowsEffectiveValues checks that settings left at 0 ("pick for me") are logged as what was picked.
func TestStartupLogShowsEffectiveValues(t *testing.T) {
	_, stop, stderr := startServerLog(t, map[string]string{"LOG_LEVEL": "info", "WORKERS": "2", "MAX_BATCH": "8"})
	stop()
	var logged struct{ Config map[string]string }
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, `"msg":"configuration"`) {
			if err := json.Unmarshal([]byte(line), &logged); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The engine's default queue is 16 batches per worker; the memory limit's is the cgroup's, else a fixed size.
	if got := logged.Config["QUEUE_SIZE"]; got != "256" {
		t.Errorf("logged QUEUE_SIZE %q; want the effective 256", got)
	}
	if got, err := strconv.ParseInt(logged.Config["MEMORY_LIMIT"], 10, 64); err != nil || got <= 0 {
		t.Errorf("logged MEMORY_LIMIT %q; want the effective limit in bytes", logged.Config["MEMORY_LIMIT"])
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	for _, env := range []map[string]string{
		{"WORKERS": "zero"},
		{"WORKERS": "0"},
		{"BATCH_DELAY": "soon"},
		{"MAX_PIXELS": "10"},
		{"LOG_LEVEL": "loud"},
	} {
		getenv := func(k string) string { return env[k] }
		err := run(context.Background(), []string{"server"}, getenv, nil, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("env %v: run returned nil; want an error", env)
		}
	}
}

func TestTrainCommandStoresIntoTheRegistry(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string { return map[string]string{"MODEL_DIR": dir, "DATA_DIR": t.TempDir()}[k] }
	train := func(extra ...string) string {
		t.Helper()
		var out bytes.Buffer
		args := append([]string{"server", "train", "-hidden", "16", "-epochs", "1", "-limit", "2000", "-quiet"}, extra...)
		if err := run(context.Background(), args, getenv, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	// Unless asked, the command stores the model and leaves what servers on that folder serve alone.
	if out := train(); !strings.Contains(out, "stored version") || !strings.Contains(out, "activated: false (activate=never)") {
		t.Fatalf("output without -activate %q; want the version stored, not activated", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ACTIVE")); err == nil {
		t.Fatalf("without -activate the active pointer names %q; want none", b)
	}
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	out.WriteString(train("-activate", "always"))
	if !strings.Contains(out.String(), "activated: true") || !strings.Contains(out.String(), "instead of "+embedded.Version) {
		t.Fatalf("output %q; want the new version stored and activated, naming the model it replaced", out.String())
	}
	// A server started on that registry serves the new version.
	base, _ := startServer(t, map[string]string{"MODEL_DIR": dir})
	if version := servingVersion(t, base); !strings.Contains(out.String(), version) || version == "" {
		t.Errorf("server serves %q; the train command stored %q", version, out.String())
	}
}

func TestSeparateAdminListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	base, _ := startServer(t, map[string]string{"ADMIN_ADDR": adminAddr, "ADMIN_TOKEN": "sep"})
	get := func(url string) int {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer sep")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(base + "/models"); got != http.StatusNotFound {
		t.Errorf("GET /models on the public address: %d; want 404", got)
	}
	if got := get("http://" + adminAddr + "/models"); got != http.StatusOK {
		t.Errorf("GET /models on the admin address: %d; want 200", got)
	}
	if got := get("http://" + adminAddr + "/predict"); got != http.StatusNotFound {
		t.Errorf("/predict on the admin address: %d; want 404", got)
	}
	if got := get(base + "/healthz"); got != http.StatusOK {
		t.Errorf("/healthz on the public address: %d", got)
	}
}

// TestSlowBodiesAreCutOff sends a body one byte at a time, slower than READ_TIMEOUT allows, to each route that reads
// one: the server must give up on it with 408 instead of holding the connection, and say so without showing the
// connection's addresses.
func TestSlowBodiesAreCutOff(t *testing.T) {
	base, _ := startServer(t, map[string]string{"READ_TIMEOUT": "1s", "ADMIN_TOKEN": "slow"})
	// A form cut off in a part's header: mime/multipart sees only a header line without its colon.
	const form = "multipart/form-data; boundary=B"
	const header = "--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Ty"
	for _, route := range []struct {
		name, path, contentType, prefix string
		length                          int
	}{
		{"png", "/predict", "image/png", "", 100000},
		{"json", "/v2/models/mnist-mlp/infer", "application/json", "", 100000},
		{"form", "/predict", form, header, 100000},
		{"small form", "/predict", form, header, 2000}, // read into memory whole before parsing
		{"data set form", "/datasets", form, header, 100000},
	} {
		t.Run(route.name, func(t *testing.T) {
			const want = "the body arrived too slowly"
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				route.path, route.contentType, route.length, route.prefix)
			start := time.Now()
			for time.Since(start) < 5*time.Second {
				if _, err := conn.Write([]byte{'['}); err != nil {
					break // the server closed the connection
				}
				time.Sleep(100 * time.Millisecond)
			}
			conn.SetReadDeadline(testwait.Deadline(t)) // the 408 may be late on a loaded machine, never missing
			answer, _ := io.ReadAll(io.LimitReader(conn, 4096))
			// A server that waited for the body would have sent nothing by now: the 408 is the proof.
			status, _, _ := strings.Cut(string(answer), "\r\n")
			if !strings.HasPrefix(status, "HTTP/1.1 408") || !strings.Contains(string(answer), want) {
				t.Errorf("answer %q; want 408 Request Timeout saying %q", answer, want)
			}
			if strings.Contains(string(answer), "127.0.0.1") || strings.Contains(string(answer), "tcp") {
				t.Errorf("the answer shows the connection: %q", answer)
			}
			t.Logf("server answered after %v: %q", time.Since(start).Round(time.Millisecond), status)
		})
	}
}
