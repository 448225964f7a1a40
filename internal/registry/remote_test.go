package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/registry/registrytest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

var created = time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)

func network(t *testing.T, name, version string, seed uint64) *model.Network {
	t.Helper()
	n, err := model.New(model.Info{
		Name: name, Version: version, Created: created.Add(time.Duration(seed) * time.Second), Layers: []int{4, 3, 2},
		Activation: model.ReLU, Labels: []string{"a", "b"}, Input: model.Input{Width: 2, Height: 2, Preprocess: model.PreprocessMNIST},
	}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// replica opens a registry on store as one more replica would, with its own download cache.
func replica(t *testing.T, store registry.Store, embedded *model.Network, opts registry.Options) *registry.Registry {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	r, err := registry.OpenStore("s3://bucket/prefix", store, embedded, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAVersionObjectIsWrittenOnce(t *testing.T) {
	store := &registrytest.MemStore{}
	r := replica(t, store, network(t, "t", "embedded", 0), registry.Options{})
	if err := r.Put(network(t, "t", "v1", 1)); err != nil {
		t.Fatal(err)
	}
	first := store.Object("versions/v1.pcpt")
	err := r.Put(network(t, "t", "v1", 2))
	if !errors.Is(err, registry.ErrExists) {
		t.Fatalf("second put of v1: got %v; want ErrExists", err)
	}
	if got := store.Object("versions/v1.pcpt"); string(got) != string(first) {
		t.Fatal("the second put changed the stored object")
	}
	// Another replica, whose own checks know nothing of v1, is refused by the store's condition.
	other := replica(t, store, network(t, "t", "embedded", 0), registry.Options{})
	if err := other.Put(network(t, "t", "v1", 3)); !errors.Is(err, registry.ErrExists) {
		t.Fatalf("put of v1 from another replica: got %v; want ErrExists", err)
	}
}

func TestOfTwoConcurrentActivationsOneWinsAndTheOtherConflicts(t *testing.T) {
	store := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	a := replica(t, store, embedded, registry.Options{})
	b := replica(t, store, embedded, registry.Options{})
	for i, v := range []string{"v1", "v2"} {
		if err := a.Put(network(t, "t", v, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	// B's activation lands between A's read of the pointer and A's write of it.
	var bErr error
	interleaved := false
	store.BeforePut = func(key string) {
		if key == "ACTIVE" && !interleaved {
			interleaved = true
			_, bErr = b.Activate("v2")
		}
	}
	_, aErr := a.Activate("v1")
	if bErr != nil {
		t.Fatalf("B's activation: %v", bErr)
	}
	if !errors.Is(aErr, registry.ErrConflict) {
		t.Fatalf("A's activation: got %v; want ErrConflict", aErr)
	}
	if v, err := a.Active(); err != nil || v != "v2" {
		t.Fatalf("A's active version after losing: %q, %v; want the winner v2 at once", v, err)
	}
	if got := strings.TrimSpace(string(store.Object("ACTIVE"))); got != "v2" {
		t.Fatalf("the pointer names %q; want the winner v2", got)
	}
	hist, err := b.History()
	if err != nil || strings.Join(hist, ",") != "v2" {
		t.Fatalf("history %v, %v; want only the winner v2", hist, err)
	}
	// A later activation, after the race, reads the new ETag and succeeds.
	store.BeforePut = nil
	if _, err := a.Activate("v1"); err != nil {
		t.Fatalf("A's activation after the race: %v", err)
	}
	if hist, _ := a.History(); strings.Join(hist, ",") != "v2,v1" {
		t.Fatalf("history %v; want v2,v1", hist)
	}
}

func TestACorruptVersionObjectIsRefusedAndTheFallbackServes(t *testing.T) {
	store := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	a := replica(t, store, embedded, registry.Options{})
	for i, v := range []string{"v1", "v2"} {
		if err := a.Put(network(t, "t", v, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Activate(v); err != nil {
			t.Fatal(err)
		}
	}
	good := store.Object("versions/v2.pcpt")
	data := store.Object("versions/v2.pcpt")
	data[len(data)-3] ^= 0xff
	store.Overwrite("versions/v2.pcpt", data)

	fresh := replica(t, store, embedded, registry.Options{})
	_, err := fresh.Load("v2")
	if !errors.Is(err, registry.ErrUnloadable) || !strings.Contains(err.Error(), "s3://bucket/prefix/versions/v2.pcpt") {
		t.Fatalf("loading the corrupt v2: got %v; want ErrUnloadable naming the object's key", err)
	}
	net, fellBack, err := fresh.LoadActive()
	if err != nil || net.Version != "v1" || !strings.Contains(fellBack, "versions/v2.pcpt") {
		t.Fatalf("LoadActive: %v, %q, %v; want v1 with a reason naming the corrupt object", net, fellBack, err)
	}
	// Asking again costs a conditional GET answered 304, not another download, until the object changes.
	if _, err := fresh.Load("v2"); !errors.Is(err, registry.ErrUnloadable) || !strings.Contains(err.Error(), "versions/v2.pcpt") {
		t.Fatalf("loading the corrupt v2 again: got %v; want the same refusal", err)
	}
	store.Overwrite("versions/v2.pcpt", good)
	if _, err := fresh.Load("v2"); err != nil {
		t.Fatalf("loading v2 once repaired: %v", err)
	}
	store.Overwrite("versions/v2.pcpt", data)
	// The replica that had v2 cached before the damage sees the new ETag and refuses it too.
	if _, err := a.Load("v2"); !errors.Is(err, registry.ErrUnloadable) {
		t.Fatalf("loading v2 on the replica with a cached copy: got %v; want ErrUnloadable", err)
	}
}

func TestReplicasConvergeThroughTheBucket(t *testing.T) {
	store := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	a := replica(t, store, embedded, registry.Options{})
	b := replica(t, store, embedded, registry.Options{})
	for i, n := range []*model.Network{network(t, "t", "v0", 1), network(t, "t", "v1", 2), network(t, "pets", "p0", 3), network(t, "pets", "p1", 4)} {
		if err := a.Put(n); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	for _, v := range []string{"v0", "p0"} {
		if _, err := a.Activate(v); err != nil {
			t.Fatal(err)
		}
	}
	// B serves both models, reading each pointer once.
	if v, err := b.ActiveOf("pets"); err != nil || v != "p0" {
		t.Fatalf("pets before: %q, %v", v, err)
	}
	if v, err := b.ActiveOf("t"); err != nil || v != "v0" {
		t.Fatalf("t before: %q, %v", v, err)
	}
	var current atomic.Value
	current.Store("v0")
	swapped := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Watch(ctx, "t", time.Millisecond, func() string { return current.Load().(string) }, func(n *model.Network) {
		current.Store(n.Version)
		swapped <- n.Version
	}, func(error) {})
	// One poll that finds nothing changed, before anything changes, so that the count below does not depend on
	// how soon the watch first runs.
	testwait.For(t, "B to poll once with nothing changed", func() bool { p, _ := b.Polls(); return p[registry.PollUnchanged] > 0 })

	if _, err := a.Activate("v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Activate("p1"); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-swapped:
		if v != "v1" {
			t.Fatalf("B swapped to %s; want v1", v)
		}
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("B never swapped to v1")
	}
	testwait.For(t, "B to follow pets' pointer", func() bool { v, _ := b.ActiveOf("pets"); return v == "p1" })
	polls, _ := b.Polls()
	if polls[registry.PollChanged] < 2 || polls[registry.PollUnchanged] == 0 {
		t.Fatalf("polls %v; want both changes counted, and unchanged polls", polls)
	}
}

func TestServingReadsNoPointerFromTheBucket(t *testing.T) {
	store := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	r := replica(t, store, embedded, registry.Options{})
	if err := r.Put(network(t, "pets", "p1", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Activate("p1"); err != nil {
		t.Fatal(err)
	}
	before := store.Gets()
	for range 100 {
		if v, err := r.ActiveOf("pets"); err != nil || v != "p1" {
			t.Fatalf("ActiveOf: %q, %v", v, err)
		}
	}
	if got := store.Gets() - before; got != 0 {
		t.Fatalf("100 lookups of the active version made %d requests; want 0", got)
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	polls, _ := r.Polls()
	if polls[registry.PollUnchanged] == 0 {
		t.Fatalf("polls %v; want an unchanged poll counted", polls)
	}
}

func TestTheDownloadCacheIsBounded(t *testing.T) {
	store := &registrytest.MemStore{}
	writer := replica(t, store, nil, registry.Options{})
	var size int64
	for i := range 5 {
		n := network(t, "t", fmt.Sprintf("v%d", i), uint64(i+1))
		if err := writer.Put(n); err != nil {
			t.Fatal(err)
		}
		size = int64(len(store.Object(fmt.Sprintf("versions/v%d.pcpt", i))))
	}
	for _, c := range []struct {
		name string
		opts registry.Options
		want string
	}{
		{"by count", registry.Options{CacheVersions: 2}, "v3,v4"},
		{"by bytes", registry.Options{CacheBytes: 3*size + size/2}, "v2,v3,v4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := replica(t, store, nil, c.opts)
			for i := range 5 {
				if _, err := r.Load(fmt.Sprintf("v%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := r.CachedVersions()
			if strings.Join(got, ",") != c.want {
				t.Fatalf("cached %v; want %s (the most recently used)", got, c.want)
			}
		})
	}
}

func TestWithTheBucketDownTheCacheAndTheDefaultServe(t *testing.T) {
	store := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	cache := t.TempDir()
	a := replica(t, store, embedded, registry.Options{CacheDir: cache})
	if err := a.Put(network(t, "t", "v1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Activate("v1"); err != nil {
		t.Fatal(err)
	}

	store.SetDown(true)
	t.Run("a new replica with no cache serves the embedded default", func(t *testing.T) {
		r := replica(t, store, embedded, registry.Options{})
		net, fellBack, err := r.LoadActive()
		if err != nil || net.Version != "embedded" || fellBack == "" {
			t.Fatalf("LoadActive: %v, %q, %v; want the embedded default with a reason", net, fellBack, err)
		}
		if err := r.Health(); err == nil {
			t.Fatal("Health is nil with the bucket down")
		}
	})
	t.Run("a restart with the cache serves the last active version", func(t *testing.T) {
		r := replica(t, store, embedded, registry.Options{CacheDir: cache})
		net, _, err := r.LoadActive()
		if err != nil || net.Version != "v1" {
			t.Fatalf("LoadActive: %v, %v; want v1 from the cache", net, err)
		}
	})
	t.Run("the watch backs off and converges once the bucket answers", func(t *testing.T) {
		r := replica(t, store, embedded, registry.Options{})
		var errs []error
		swapped := make(chan string, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		errored := make(chan struct{}, 1)
		go func() {
			defer close(done)
			r.Watch(ctx, "t", time.Millisecond, func() string { return "embedded" }, func(n *model.Network) {
				select {
				case swapped <- n.Version:
				default:
				}
				cancel()
			}, func(err error) {
				errs = append(errs, err)
				select {
				case errored <- struct{}{}:
				default:
				}
			})
		}()
		<-errored
		store.SetDown(false)
		select {
		case v := <-swapped:
			if v != "v1" {
				t.Fatalf("swapped to %s; want v1", v)
			}
		case <-time.After(testwait.Timeout(t)):
			t.Fatal("the watch never converged")
		}
		<-done
		if len(errs) == 0 || r.Health() != nil {
			t.Fatalf("errors %v, health %v; want errors while down and health nil after", errs, r.Health())
		}
	})
}

func TestADamagedCachedCopyIsDownloadedAgain(t *testing.T) {
	store := &registrytest.MemStore{}
	cache := t.TempDir()
	r := replica(t, store, nil, registry.Options{CacheDir: cache})
	if err := r.Put(network(t, "t", "v1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("v1"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "versions", "v1~*.pcpt"))
	if len(files) != 1 {
		t.Fatalf("cache files %v; want one for v1", files)
	}
	if err := os.WriteFile(files[0], []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if net, err := r.Load("v1"); err != nil || net.Version != "v1" {
		t.Fatalf("Load with a damaged cached copy: %v, %v; want v1 downloaded again", net, err)
	}
}

func TestActivatingRepairsADamagedPointer(t *testing.T) {
	store := &registrytest.MemStore{}
	r := replica(t, store, network(t, "t", "embedded", 0), registry.Options{})
	if err := r.Put(network(t, "t", "v1", 1)); err != nil {
		t.Fatal(err)
	}
	store.Overwrite("ACTIVE", []byte("../../etc\n"))
	if _, err := r.Activate("v1"); err != nil {
		t.Fatalf("activating over a damaged pointer: %v", err)
	}
	if got := strings.TrimSpace(string(store.Object("ACTIVE"))); got != "v1" {
		t.Fatalf("the pointer names %q; want v1", got)
	}
}

// mixedStore answers the next Get of key once with the bytes of the object as it was before the last write and
// the ETag of the object as it is: a gateway that keeps an object's ETag apart from its bytes can answer a read that
// races a write that way.
type mixedStore struct {
	*registrytest.MemStore
	key   string
	stale []byte
}

func (m *mixedStore) Get(ctx context.Context, key, ifNoneMatch string) ([]byte, string, error) {
	data, etag, err := m.MemStore.Get(ctx, key, ifNoneMatch)
	if key == m.key && m.stale != nil && err == nil {
		data, m.stale = m.stale, nil
	}
	return data, etag, err
}

func TestAPointerReadWithAnotherWritesETagIsReadWholeNextTime(t *testing.T) {
	mem := &registrytest.MemStore{}
	embedded := network(t, "t", "embedded", 0)
	a := replica(t, mem, embedded, registry.Options{})
	store := &mixedStore{MemStore: mem, key: "ACTIVE"}
	b := replica(t, store, embedded, registry.Options{})
	for i, v := range []string{"v0", "v1"} {
		if err := a.Put(network(t, "t", v, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Activate("v0"); err != nil {
		t.Fatal(err)
	}
	if v, err := b.ActiveOf("t"); err != nil || v != "v0" {
		t.Fatalf("before: %q, %v", v, err)
	}
	if _, err := a.Activate("v1"); err != nil {
		t.Fatal(err)
	}
	store.stale = []byte("v0\n") // the next read of ACTIVE: v0's bytes, v1's ETag
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, err := b.ActiveOf("t"); err != nil || v != "v1" {
		t.Fatalf("after two polls B's pointer names %q (%v); want v1: the mixed answer's ETag was kept, so every later poll is a 304", v, err)
	}
}
