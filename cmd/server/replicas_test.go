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
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

var built struct {
	once sync.Once
	bin  string
	err  error
}

// buildServer compiles this command once per test binary run, into a folder removed when the tests end.
func buildServer(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "perceptron-server-test")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-o", built.bin, ".")
		cmd.Stderr = os.Stderr
		built.err = cmd.Run()
	})
	if built.err != nil {
		t.Fatalf("go build: %v", built.err)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}

// process is a server binary running on a loopback port.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited; err is then its exit error
	err    error
}

// startProcess runs the server binary on a free loopback port and returns its base URL.
func startProcess(t *testing.T, bin string, env ...string) string {
	return startProc(t, bin, env...).base
}

// startProc runs the server binary and returns it once it listens; it is interrupted at the end of the test.
func startProc(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), append([]string{"ADDR=127.0.0.1:0", "GRPC_ADDR=127.0.0.1:0", "LOG_LEVEL=warn", "TRAIN_PRIORITY=normal"}, env...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.exited:
		case <-time.After(testwait.Timeout(t)):
			cmd.Process.Kill()
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "perceptron listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			p.base = a
			return p
		}
	}
	t.Fatalf("server process exited before listening:\n%s", p.stderr.String())
	return nil
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
		code, out := apitest.JSON(t, method, base+path, "replica-token", body)
		if code >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, code, out)
		}
		return out
	}
	job := admin(bases[0], "POST", "/train", `{"hidden":[16],"epochs":1,"limit":2000,"activate":"always"}`)
	id := job["id"].(string)
	deadline := testwait.Deadline(t)
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
				// A few seconds on an idle machine (WATCH_INTERVAL), as logged below; more on a loaded one.
				if time.Now().After(testwait.Deadline(t)) {
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
