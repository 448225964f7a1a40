package registry

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

func netVersion(t *testing.T, version string, created time.Time, seed uint64) *model.Network {
	t.Helper()
	n, err := model.New(model.Info{
		Name: "t", Version: version, Created: created, Layers: []int{4, 3, 2}, Activation: model.ReLU,
		Labels: []string{"a", "b"}, Input: model.Input{Width: 2, Height: 2, Preprocess: model.PreprocessMNIST},
	}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bigNet is a network of the default model's size, for tests where file size matters, a version of the same model
// "t" as netVersion's.
func bigNet(version string, created time.Time, seed uint64) *model.Network {
	labels := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	n, err := model.New(model.Info{
		Name: "t", Version: version, Created: created, Layers: []int{784, 128, 64, 10}, Activation: model.ReLU,
		Labels: labels, Input: model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST},
	}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		panic(err)
	}
	return n
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestPutListActivate(t *testing.T) {
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1)
	r, err := Open(t.TempDir(), emb)
	if err != nil {
		t.Fatal(err)
	}
	a, b := netVersion(t, "v-a", t0, 2), netVersion(t, "v-b", t0.Add(time.Minute), 3)
	for _, n := range []*model.Network{a, b} {
		if err := r.Put(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Put(a); !errors.Is(err, ErrExists) {
		t.Errorf("second Put of v-a: %v; want ErrExists", err)
	}
	list, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Version+map[bool]string{true: "*", false: ""}[e.Active])
	}
	if strings.Join(got, " ") != "v-b v-a embedded-1*" {
		t.Errorf("list %v; want newest first with the embedded model active", got)
	}
	if _, err := r.Activate("v-a"); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Active(); v != "v-a" {
		t.Errorf("active %q; want v-a", v)
	}
	e, err := r.Get("v-a")
	if err != nil || !e.Active || e.Source != "registry" {
		t.Errorf("Get(v-a) = %+v, %v; want the active registry entry", e, err)
	}
	loaded, err := r.Load("v-a")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.MLP.Params[0] != a.MLP.Params[0] {
		t.Error("loaded weights differ from the stored ones")
	}
	// Rolling back to the embedded default.
	if _, err := r.Activate("embedded-1"); err != nil {
		t.Fatal(err)
	}
	if net, why, err := r.LoadActive(); err != nil || why != "" || net.Version != "embedded-1" {
		t.Errorf("LoadActive after rollback = %v, %q, %v; want embedded-1", net.Version, why, err)
	}
}

func TestVersionNamesCannotEscapeTheFolder(t *testing.T) {
	r, _ := Open(t.TempDir(), nil)
	for _, v := range []string{"../../etc/passwd", "a/b", "", ".hidden", "x\x00y", strings.Repeat("v", 65), `..\win`} {
		if _, err := r.Load(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Load(%q): %v; want ErrInvalid", v, err)
		}
		if _, err := r.Activate(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Activate(%q): %v; want ErrInvalid", v, err)
		}
		if _, err := r.Get(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Get(%q): %v; want ErrInvalid", v, err)
		}
	}
	if _, err := r.Load("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(missing): %v; want ErrNotFound", err)
	}
}

func TestCorruptedActiveVersionFallsBack(t *testing.T) {
	dir := t.TempDir()
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1)
	r, _ := Open(dir, emb)
	good, bad := netVersion(t, "good", t0, 2), netVersion(t, "bad", t0.Add(time.Minute), 3)
	r.Put(good)
	r.Put(bad)
	for _, v := range []string{"good", "bad"} {
		if _, err := r.Activate(v); err != nil {
			t.Fatal(err)
		}
	}
	// Corrupt the active file on disk, as a failing disk or a bad copy would.
	p := filepath.Join(dir, "versions", "bad.pcpt")
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 0xff
	os.WriteFile(p, data, 0o644)
	// Leave a temporary file of an interrupted write behind too.
	os.WriteFile(filepath.Join(dir, "versions", ".x.pcpt.tmp123"), []byte("half"), 0o644)

	net, why, err := r.LoadActive()
	if err != nil {
		t.Fatal(err)
	}
	if net.Version != "good" || !strings.Contains(why, "bad") {
		t.Errorf("LoadActive = %s, %q; want a fallback to good that names bad", net.Version, why)
	}
	list, _ := r.List()
	for _, e := range list {
		if e.Version == "bad" {
			t.Error("List shows the corrupted version")
		}
	}
	if probs, _ := r.Problems(); probs["bad"] == nil {
		t.Errorf("Problems() = %v; want bad reported", probs)
	}
}

func TestReplicasConvergeThroughTheSharedFolder(t *testing.T) {
	dir := t.TempDir()
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1)
	writer, _ := Open(dir, emb)
	reader, _ := Open(dir, emb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	serving := "embedded-1"
	swapped := make(chan string, 10)
	go reader.Watch(ctx, "t", 10*time.Millisecond,
		func() string { mu.Lock(); defer mu.Unlock(); return serving },
		func(n *model.Network) { mu.Lock(); serving = n.Version; mu.Unlock(); swapped <- n.Version },
		func(err error) { t.Errorf("watch: %v", err) })

	n := netVersion(t, "v2", t0, 5)
	if err := writer.Put(n); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Activate("v2"); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-swapped:
		if v != "v2" {
			t.Errorf("swapped to %s; want v2", v)
		}
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("the other replica did not pick up the new active version")
	}
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	r, _ := Open(t.TempDir(), nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			n := netVersion(t, "v"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Second), uint64(i))
			if err := r.Put(n); err != nil {
				t.Error(err)
			}
			if _, err := r.List(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, _ := r.List()
	if len(list) != 8 {
		t.Errorf("%d versions listed; want 8", len(list))
	}
}

// truncate cuts a version's file short, as a crashed copy or a full disk would leave it.
func truncate(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.Truncate(filepath.Join(dir, "versions", version+".pcpt"), 1000); err != nil {
		t.Fatal(err)
	}
}

// TestFallbackIsOnlyToAVersionActiveBefore runs two registries on one folder, as two replicas: when the active
// version's file is damaged, the one that starts next serves the version active before it, never a newer one that
// nobody activated; with no such version, the embedded default.
func TestFallbackIsOnlyToAVersionActiveBefore(t *testing.T) {
	dir := t.TempDir()
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1)
	a, _ := Open(dir, emb)
	b, _ := Open(dir, emb)
	for i, v := range []string{"first", "second", "third"} {
		if err := a.Put(bigNet(v, t0.Add(time.Duration(i)*time.Minute), uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Activate("second"); err != nil {
		t.Fatal(err)
	}
	// "third" is newer but was only stored (a job with activate=never).
	truncate(t, dir, "second")
	net, why, err := b.LoadActive()
	if err != nil {
		t.Fatal(err)
	}
	if net.Version != "embedded-1" || !strings.Contains(why, "second") || !strings.Contains(why, "embedded") {
		t.Errorf("LoadActive = %s, %q; want the embedded default (nothing was active before second), saying why", net.Version, why)
	}

	// Activations through either registry make one history: first, then the default, then fourth.
	if _, err := b.Activate("first"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Activate("embedded-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(bigNet("fourth", t0.Add(time.Hour), 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Activate("fourth"); err != nil {
		t.Fatal(err)
	}
	if hist, _ := a.History(); strings.Join(hist, " ") != "second first embedded-1 fourth" {
		t.Errorf("history %q; want second first embedded-1 fourth", hist)
	}
	truncate(t, dir, "fourth")
	net, why, _ = a.LoadActive()
	if net.Version != "embedded-1" || !strings.Contains(why, "fourth") {
		t.Errorf("LoadActive = %s, %q; want embedded-1, the version active just before fourth", net.Version, why)
	}
	// A damaged history line is skipped; the lines around it still count.
	os.WriteFile(filepath.Join(dir, "HISTORY"), []byte("first\n../../etc\n\x00\nfourth\n"), 0o644)
	net, _, _ = b.LoadActive()
	if net.Version != "first" {
		t.Errorf("LoadActive with a damaged history = %s; want first", net.Version)
	}
}

// TestHistoryStartsWithTheActiveVersionOfAnOlderRegistry: a registry written before the history existed has a
// pointer but no history; the version it named was chosen by someone, so it counts as active before.
func TestHistoryStartsWithTheActiveVersionOfAnOlderRegistry(t *testing.T) {
	dir := t.TempDir()
	r, _ := Open(dir, nil)
	r.Put(netVersion(t, "old", t0, 1))
	r.Put(netVersion(t, "new", t0.Add(time.Minute), 2))
	os.WriteFile(filepath.Join(dir, "ACTIVE"), []byte("old\n"), 0o644)
	if _, err := r.Activate("new"); err != nil {
		t.Fatal(err)
	}
	if hist, _ := r.HistoryOf("t"); strings.Join(hist, " ") != "old new" {
		t.Errorf("history %q; want old new", hist)
	}
}

// TestActivatingADamagedVersionChangesNothing: Activate refuses a version whose file does not load with
// ErrUnloadable, leaves the pointer alone, and names no absolute path.
func TestActivatingADamagedVersionChangesNothing(t *testing.T) {
	dir := t.TempDir()
	r, _ := Open(dir, nil)
	r.Put(bigNet("good", t0, 1))
	r.Put(bigNet("bad", t0.Add(time.Minute), 2))
	r.Activate("good")
	truncate(t, dir, "bad")
	_, err := r.Activate("bad")
	if !errors.Is(err, ErrUnloadable) {
		t.Fatalf("Activate(bad) = %v; want ErrUnloadable", err)
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("error %q names the registry's absolute path", err)
	}
	if active, _ := r.ActiveOf("t"); active != "good" {
		t.Errorf("active %q after a refused activation; want good", active)
	}
}

// TestADamagedVersionIsReadOnce: listing does not read a damaged file again while it keeps its size and time.
func TestADamagedVersionIsReadOnce(t *testing.T) {
	dir := t.TempDir()
	r, _ := Open(dir, nil)
	r.Put(bigNet("bad", t0, 1))
	truncate(t, dir, "bad")
	reads := 0
	r.load = func(p string) (*model.Network, error) { reads++; return model.Load(p) }
	for range 3 {
		if probs, _ := r.Problems(); probs["bad"] == nil {
			t.Fatal("the damaged version is not reported")
		}
		r.List()
	}
	if reads != 1 {
		t.Errorf("the damaged file was read %d times by 6 listings; want once", reads)
	}
	// A new file under the same name is read again.
	os.Remove(filepath.Join(dir, "versions", "bad.pcpt"))
	r.Put(bigNet("bad", t0, 1))
	if list, _ := r.List(); len(list) != 1 || reads != 2 {
		t.Errorf("after the file was replaced: %d entries, %d reads; want 1 entry, 2 reads", len(list), reads)
	}
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("first\nsecond\n"))
	f.Add([]byte("a\r\n\n../x\n" + strings.Repeat("v", 70)))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range parseHistory(b) {
			if !validVersion.MatchString(v) {
				t.Fatalf("parseHistory returned %q, not a version name", v)
			}
		}
	})
}

// named returns a version of model name.
func named(t *testing.T, name, version string, created time.Time, seed uint64) *model.Network {
	t.Helper()
	n := netVersion(t, version, created, seed)
	n.Name = name
	return n
}

// TestEachModelNameHasItsOwnPointerAndHistory: activating a version of one model moves that model's pointer
// alone; each name falls back within its own history; listings mark each model's active version.
func TestEachModelNameHasItsOwnPointerAndHistory(t *testing.T) {
	dir := t.TempDir()
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1) // model "t"
	r, _ := Open(dir, emb)
	other, _ := Open(dir, emb) // another replica
	for i, n := range []*model.Network{
		named(t, "t", "t-2", t0, 2), named(t, "pets", "pets-1", t0.Add(time.Minute), 3),
		named(t, "pets", "pets-2", t0.Add(2*time.Minute), 4),
	} {
		if err := r.Put(n); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	for _, v := range []string{"pets-1", "pets-2", "t-2"} {
		if _, err := r.Activate(v); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"t": "t-2", "pets": "pets-2"} {
		if got, err := other.ActiveOf(name); err != nil || got != want {
			t.Errorf("ActiveOf(%s) = %q, %v; want %s", name, got, err, want)
		}
	}
	if hist, _ := other.HistoryOf("pets"); strings.Join(hist, " ") != "pets-1 pets-2" {
		t.Errorf("pets history %q; want pets-1 pets-2", hist)
	}
	if hist, _ := other.HistoryOf("t"); strings.Join(hist, " ") != "t-2" {
		t.Errorf("t history %q; want t-2 alone", hist)
	}
	if names, _ := other.Names(); strings.Join(names, " ") != "pets t" {
		t.Errorf("names %q; want pets t", names)
	}
	list, err := other.ListOf("pets")
	if err != nil || len(list) != 2 || !list[0].Active || list[0].Version != "pets-2" || list[1].Active {
		t.Errorf("ListOf(pets) = %+v, %v; want pets-2 (active) then pets-1", list, err)
	}
	if _, err := other.ListOf("cats"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListOf(cats) = %v; want ErrNotFound", err)
	}
	if _, _, err := other.LoadActiveOf("cats"); !errors.Is(err, ErrNoActive) {
		t.Errorf("LoadActiveOf(cats) = %v; want ErrNoActive", err)
	}
	// A damaged pets version falls back to the pets version active before it, never to a version of t.
	truncate(t, dir, "pets-2")
	net, why, err := other.LoadActiveOf("pets")
	if err != nil || net.Version != "pets-1" || !strings.Contains(why, "pets-2") {
		t.Errorf("LoadActiveOf(pets) = %v, %q, %v; want pets-1 saying why", net, why, err)
	}
	// A version whose file names no valid model name is not stored.
	bad := named(t, "a b", "v-bad", t0, 5)
	if err := r.Put(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("Put of model %q: %v; want ErrInvalid", bad.Name, err)
	}
}

// TestARegistryWithOnePointerMigrates: a registry from before named models has one ACTIVE and one HISTORY for every
// model. Its pointer becomes the pointer of the model of the version it names, and activating the embedded model's
// name afterwards leaves that model's pointer alone.
func TestARegistryWithOnePointerMigrates(t *testing.T) {
	dir := t.TempDir()
	emb := netVersion(t, "embedded-1", t0.Add(-time.Hour), 1) // model "t"
	r, _ := Open(dir, emb)
	r.Put(named(t, "t", "t-2", t0, 2))
	r.Put(named(t, "pets", "pets-1", t0.Add(time.Minute), 3))
	// The old single slot: t-2 was active, then pets-1 replaced it.
	os.WriteFile(filepath.Join(dir, "HISTORY"), []byte("t-2\npets-1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ACTIVE"), []byte("pets-1\n"), 0o644)

	r, _ = Open(dir, emb)
	if v, _ := r.ActiveOf("pets"); v != "pets-1" {
		t.Errorf("pets active %q; want pets-1, the old pointer", v)
	}
	if v, _ := r.Active(); v != "" {
		t.Errorf("t active %q; want none (the old pointer names a pets version; the embedded model serves)", v)
	}
	if net, _, _ := r.LoadActive(); net.Version != "embedded-1" {
		t.Errorf("LoadActive of t = %s; want embedded-1", net.Version)
	}
	if _, err := r.Activate("t-2"); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.ActiveOf("pets"); v != "pets-1" {
		t.Errorf("after activating t-2, pets active %q; want pets-1 still", v)
	}
	if v, _ := r.Active(); v != "t-2" {
		t.Errorf("t active %q; want t-2", v)
	}
	if hist, _ := r.History(); strings.Join(hist, " ") != "t-2 t-2" {
		t.Errorf("t history %q; want t-2 t-2 (the old history's t versions, then this activation)", hist)
	}
	if hist, _ := r.HistoryOf("pets"); strings.Join(hist, " ") != "pets-1" {
		t.Errorf("pets history %q; want pets-1", hist)
	}
}
