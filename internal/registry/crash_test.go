package registry

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// writerEnv makes the test binary, run again as a child, write versions and move the active pointer until killed.
const writerEnv = "PERCEPTRON_REGISTRY_CRASH_WRITER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// crashWriter stores ever more versions of a realistic size (a 784-128-64-10 network, 437 KB) and activates each.
func crashWriter(dir string) {
	r, err := Open(dir, nil)
	if err != nil {
		panic(err)
	}
	for i := 0; ; i++ {
		n := bigNet(fmt.Sprintf("v%d-%06d", os.Getpid(), i), time.Now().UTC(), uint64(i))
		if err := r.Put(n); err != nil {
			panic(err)
		}
		if _, err := r.Activate(n.Version); err != nil {
			panic(err)
		}
	}
}

// TestKill9DuringWritesLeavesALoadableRegistry kills a writer with SIGKILL at random moments, again and again, and
// checks after each kill that every listed version loads, nothing half-written is listed, and the active pointer
// names a version that loads.
func TestKill9DuringWritesLeavesALoadableRegistry(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	kills := 10
	if testing.Short() {
		kills = 4
	}
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()

		r, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bad, _ := r.Problems(); len(bad) > 0 {
			t.Fatalf("kill %d: version files that do not load: %v", k, bad)
		}
		list, err := r.List()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if _, err := r.Load(e.Version); err != nil {
				t.Fatalf("kill %d: listed version %s does not load: %v", k, e.Version, err)
			}
		}
		active, err := r.ActiveOf("t")
		if err != nil {
			t.Fatalf("kill %d: active pointer: %v", k, err)
		}
		if active != "" {
			if _, err := r.Load(active); err != nil {
				t.Fatalf("kill %d: active version %s does not load: %v", k, active, err)
			}
		}
		t.Logf("kill %d: %d versions, active %s", k, len(list), active)
	}

	// Temporary files of cut-off writes are cleaned up once they are stale.
	temps, _ := filepath.Glob(filepath.Join(dir, "versions", ".*.tmp*"))
	for _, p := range temps {
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
	}
	if _, err := Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "versions", ".*.tmp*")); len(left) > 0 {
		t.Errorf("%d stale temporary files left after Open (of %d)", len(left), len(temps))
	}
}
