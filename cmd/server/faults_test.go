package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// TestSIGTERMUnderLoadFailsNoAcceptedRequest keeps 16 clients predicting over kept-alive connections while the
// server gets SIGTERM. Readiness flips first, responses carry Connection: close through the drain window, then the
// listener closes and requests in flight finish: no request sent on a kept-alive connection may fail. A request on
// a fresh connection can meet a listener that is closing (refused, or reset in the accept queue): the server never
// accepted it, and clients retry those; the test counts them apart.
func TestSIGTERMUnderLoadFailsNoAcceptedRequest(t *testing.T) {
	bin := buildServer(t)
	p := startProc(t, bin, "MODEL_DIR="+t.TempDir(), "DATA_DIR="+t.TempDir(), "DRAIN_DELAY=500ms", "SHUTDOWN_TIMEOUT=10s")
	img, _ := mnistPNG(t, 0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	var ok, failed, fresh atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var reused bool
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
					"POST", p.base+"/predict", bytes.NewReader(img))
				req.Header.Set("Content-Type", "image/png")
				resp, err := client.Do(req)
				if err != nil {
					if !reused {
						fresh.Add(1) // refused or reset before the server accepted it
						time.Sleep(5 * time.Millisecond)
						continue
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	before := ok.Load()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		err := p.err
		if err != nil {
			t.Errorf("server exited with %v after SIGTERM; want 0", err)
		}
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("server did not exit after SIGTERM")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests answered before SIGTERM, %d in all; %d on fresh connections not accepted while the listener closed; %d failed",
		before, ok.Load(), fresh.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests on kept-alive connections failed during shutdown (first: %v)", failed.Load(), firstErr.Load())
	}
	if ok.Load() <= before {
		t.Error("no request was answered during the drain window")
	}
}

// TestKill9DuringTrainingReportsTheJobFailed kills the server with SIGKILL while a job trains; after a restart on
// the same MODEL_DIR the registry loads, the served model is intact, and the job is reported failed, not running.
func TestKill9DuringTrainingReportsTheJobFailed(t *testing.T) {
	bin := buildServer(t)
	dir, data := t.TempDir(), t.TempDir()
	env := []string{"MODEL_DIR=" + dir, "DATA_DIR=" + data, "ADMIN_TOKEN=k9"}
	p := startProc(t, bin, env...)
	code, job := apitest.JSON(t, "POST", p.base+"/train", "k9", `{"hidden":[64],"epochs":50}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /train: %d %v", code, job)
	}
	id := job["id"].(string)
	for deadline := testwait.Deadline(t); ; time.Sleep(20 * time.Millisecond) {
		_, j := apitest.JSON(t, "GET", p.base+"/train/"+id, "k9", "")
		if j["status"] == "running" && j["progress"].(map[string]any)["fraction"].(float64) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never got going: %v", j)
		}
	}
	p.cmd.Process.Kill()
	<-p.exited

	p2 := startProc(t, bin, env...)
	_, j := apitest.JSON(t, "GET", p2.base+"/train/"+id, "k9", "")
	if j["status"] != "failed" || !strings.Contains(j["error"].(string), "interrupted") {
		t.Errorf("after kill -9 and restart the job is %v (%v); want failed, interrupted", j["status"], j["error"])
	}
	if v := servingVersion(t, p2.base); v == "" {
		t.Error("the restarted server serves no model")
	}
	reg, err := registry.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bad, _ := reg.Problems(); len(bad) > 0 {
		t.Errorf("registry files that do not load after kill -9: %v", bad)
	}
}

// mountTmpfs mounts a small tmpfs at dir, or skips the test where mounting is not allowed (not root).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root; CI runs as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// TestFullOrReadOnlyModelDirFailsTrainingNotServing fills MODEL_DIR (a tiny tmpfs), then makes it read-only: a
// training job must fail with a clear error each time, while /predict keeps answering.
func TestFullOrReadOnlyModelDirFailsTrainingNotServing(t *testing.T) {
	bin := buildServer(t)
	dir := filepath.Join(t.TempDir(), "models")
	os.MkdirAll(dir, 0o755)
	mountTmpfs(t, dir, "400k")
	p := startProc(t, bin, "MODEL_DIR="+dir, "DATA_DIR="+t.TempDir(), "ADMIN_TOKEN=full")
	img, label := mnistPNG(t, 0)

	run := func(what string) {
		t.Helper()
		code, job := apitest.JSON(t, "POST", p.base+"/train", "full", `{"hidden":[256],"epochs":1,"limit":1000}`)
		if code != http.StatusAccepted {
			t.Fatalf("%s: POST /train %d %v", what, code, job)
		}
		id := job["id"].(string)
		var j map[string]any
		for deadline := testwait.Deadline(t); ; time.Sleep(20 * time.Millisecond) {
			_, j = apitest.JSON(t, "GET", p.base+"/train/"+id, "full", "")
			if j["status"] == "failed" || j["status"] == "succeeded" || time.Now().After(deadline) {
				break
			}
		}
		if j["status"] != "failed" || !strings.Contains(j["error"].(string), "storing the model") {
			t.Errorf("%s: job %v (%v); want failed with an error about storing the model", what, j["status"], j["error"])
		} else {
			t.Logf("%s: job failed: %s", what, j["error"])
			if strings.Contains(j["error"].(string), dir) {
				t.Errorf("%s: the job's error names MODEL_DIR's absolute path %s", what, dir)
			}
		}
		resp, err := http.Post(p.base+"/predict", "image/png", bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Predictions []struct{ Index int } }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(out.Predictions) != 1 || out.Predictions[0].Index != label {
			t.Errorf("%s: /predict %d %+v after the failed job; want 200 predicting %d", what, resp.StatusCode, out, label)
		}
	}
	// A 784-256-10 model is about 800 KB: it cannot fit in 400 KB.
	run("full disk")
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v %s", err, out)
	}
	run("read-only MODEL_DIR")
}

// TestCorruptedActiveModelAtStartFallsBack corrupts the active version's file while the server is down: the next
// start serves the version active before it, says so in its log, and lists the bad file nowhere.
func TestCorruptedActiveModelAtStartFallsBack(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := registry.Open(dir, embedded)
	good := embedded.Clone()
	good.Version, good.Created = "good-1", time.Now().UTC()
	bad := embedded.Clone()
	bad.Version, bad.Created = "bad-2", time.Now().UTC().Add(time.Second)
	for _, n := range []*model.Network{good, bad} {
		if err := reg.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"good-1", "bad-2"} {
		if _, err := reg.Activate(v); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "versions", "bad-2.pcpt")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)/2], 0o644) // truncated, as a crashed copy would leave it

	p := startProc(t, bin, "MODEL_DIR="+dir, "DATA_DIR="+t.TempDir(), "LOG_LEVEL=info")
	if v := servingVersion(t, p.base); v != "good-1" {
		t.Errorf("serving %q; want the last good version good-1", v)
	}
	if log := p.stderr.String(); !strings.Contains(log, "fell back") || !strings.Contains(log, "bad-2") {
		t.Errorf("the log does not say it fell back from bad-2:\n%s", log)
	}
}
