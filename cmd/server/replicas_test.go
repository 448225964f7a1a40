package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildServer compiles this command once per test binary run.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// startProcess runs the server binary on a free loopback port and returns its base URL.
func startProcess(t *testing.T, bin string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), append([]string{"ADDR=127.0.0.1:0", "LOG_LEVEL=warn"}, env...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "perceptron listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return a
		}
	}
	t.Fatal("server process exited before listening")
	return ""
}

func servingVersion(t *testing.T, base string) string {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Version string }
	json.NewDecoder(resp.Body).Decode(&r)
	return r.Version
}

// TestReplicasConverge runs three server processes on one MODEL_DIR. A model trained and activated through one of
// them must be served by all three within a few seconds, and so must a rollback made through another.
func TestReplicasConverge(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	env := []string{"MODEL_DIR=" + dir, "DATA_DIR=" + t.TempDir(), "ADMIN_TOKEN=replica-token", "WATCH_INTERVAL=200ms"}
	var bases []string
	for range 3 {
		bases = append(bases, startProcess(t, bin, env...))
	}
	original := servingVersion(t, bases[0])

	admin := func(base, method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer replica-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	job := admin(bases[0], "POST", "/train", `{"hidden":[16],"epochs":1,"limit":2000,"activate":"always"}`)
	id := job["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	var version string
	for {
		j := admin(bases[0], "GET", "/train/"+id, "")
		if j["status"] == "succeeded" {
			version = j["model_version"].(string)
			break
		}
		if j["status"] == "failed" || time.Now().After(deadline) {
			t.Fatalf("job: %v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}

	converge := func(want string) {
		t.Helper()
		start := time.Now()
		for i, b := range bases {
			for servingVersion(t, b) != want {
				if time.Since(start) > 5*time.Second {
					t.Fatalf("replica %d serves %s %v after the change; want %s", i, servingVersion(t, b), time.Since(start), want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		t.Logf("all replicas serve %s within %v", want, time.Since(start).Round(time.Millisecond))
	}
	converge(version)
	// Roll back through another replica.
	admin(bases[2], "POST", fmt.Sprintf("/models/%s/activate", original), "")
	converge(original)
}
