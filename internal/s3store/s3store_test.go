package s3store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
		"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
		"S3_FORCE_PATH_STYLE": "true", "AWS_PROFILE": "p",
	}
	c, err := ConfigFromEnv("s3://models/team/registry/", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: "models", Prefix: "team/registry", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1",
		PathStyle: true, AccessKey: "id", SecretKey: "secret", Profile: "p"}
	if c != want {
		t.Fatalf("got %+v; want %+v", c, want)
	}
	for _, bad := range []string{"s3://", "s3:///prefix", "file:///x", "s3://b/p?x=1"} {
		if _, err := ConfigFromEnv(bad, func(string) string { return "" }); err == nil {
			t.Errorf("ConfigFromEnv(%q): no error", bad)
		}
	}
	if _, err := ConfigFromEnv("s3://b", func(k string) string { return map[string]string{"S3_FORCE_PATH_STYLE": "yes"}[k] }); err == nil {
		t.Error("S3_FORCE_PATH_STYLE=yes: no error")
	}
}

// gatewayStore starts versitygw (PERCEPTRON_VERSITYGW, or on the PATH) on a loopback port with a fresh bucket, and
// returns a Store on it; the test is skipped without versitygw unless PERCEPTRON_S3 is set.
func gatewayStore(t *testing.T) *Store {
	t.Helper()
	bin := os.Getenv("PERCEPTRON_VERSITYGW")
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		if os.Getenv("PERCEPTRON_S3") != "" {
			t.Fatal("versitygw is not installed, and PERCEPTRON_S3 is set")
		}
		t.Skip("versitygw is not installed (set PERCEPTRON_VERSITYGW)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "bucket"), 0o755)
	os.MkdirAll(filepath.Join(dir, "sidecar"), 0o755)
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--access", "test", "--secret", "testsecret", "--region", "us-east-1",
		"--quiet", "posix", "--sidecar", filepath.Join(dir, "sidecar"), root)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testwait.For(t, "versitygw to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	s, err := New(Config{Bucket: "bucket", Prefix: "reg", Endpoint: "http://" + addr, Region: "us-east-1",
		PathStyle: true, AccessKey: "test", SecretKey: "testsecret"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAgainstARealGateway(t *testing.T) {
	s := gatewayStore(t)
	ctx := context.Background()

	if _, _, err := s.Get(ctx, "ACTIVE", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("get of a missing key: got %v; want fs.ErrNotExist", err)
	}
	etag, err := s.Put(ctx, "ACTIVE", []byte("v1\n"), registry.IfAbsent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "ACTIVE", []byte("v2\n"), registry.IfAbsent); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("put if absent over an object: got %v; want ErrPrecondition", err)
	}
	data, got, err := s.Get(ctx, "ACTIVE", "")
	if err != nil || string(data) != "v1\n" || got != etag {
		t.Fatalf("get: %q, %q, %v; want v1 and ETag %q", data, got, err, etag)
	}
	if _, _, err := s.Get(ctx, "ACTIVE", etag); !errors.Is(err, registry.ErrNotModified) {
		t.Fatalf("conditional get of an unchanged object: got %v; want ErrNotModified", err)
	}
	next, err := s.Put(ctx, "ACTIVE", []byte("v2\n"), etag)
	if err != nil {
		t.Fatalf("put if the ETag matches: %v", err)
	}
	if _, err := s.Put(ctx, "ACTIVE", []byte("v3\n"), etag); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("put with a stale ETag: got %v; want ErrPrecondition", err)
	}
	if data, got, err := s.Get(ctx, "ACTIVE", etag); err != nil || string(data) != "v2\n" || got != next {
		t.Fatalf("conditional get of a changed object: %q, %q, %v; want v2 with ETag %q", data, got, err, next)
	}
	if _, err := s.Put(ctx, "versions/a.pcpt", []byte("x"), registry.Always); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "models/pets/ACTIVE", []byte("p\n"), registry.Always); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "versions/")
	if err != nil || len(objs) != 1 || objs[0].Key != "versions/a.pcpt" || objs[0].Size != 1 || objs[0].ETag == "" {
		t.Fatalf("list: %+v, %v; want versions/a.pcpt alone", objs, err)
	}
	if err := s.Delete(ctx, "versions/a.pcpt"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "versions/a.pcpt"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
}

// FuzzConfigFromEnv: any MODEL_DIR and S3_FORCE_PATH_STYLE is an error or a configuration naming a bucket, never a
// panic, and the bucket and prefix never carry the separators they were cut at.
func FuzzConfigFromEnv(f *testing.F) {
	for _, seed := range []string{"s3://b/p", "s3://b", "s3://b//p/q/", "s3:///p", "s3://b/p?x", "s3://%zz/p", "file:///x", ""} {
		f.Add(seed, "true")
	}
	f.Fuzz(func(t *testing.T, address, pathStyle string) {
		c, err := ConfigFromEnv(address, func(k string) string {
			if k == "S3_FORCE_PATH_STYLE" {
				return pathStyle
			}
			return ""
		})
		if err != nil {
			return
		}
		if c.Bucket == "" || strings.Contains(c.Bucket, "/") || strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
			t.Fatalf("ConfigFromEnv(%q) = %+v", address, c)
		}
	})
}

// hookedStore lets a test run another replica's request at the moment one replica writes.
type hookedStore struct {
	registry.Store
	beforePut func(key string)
}

func (h *hookedStore) Put(ctx context.Context, key string, data []byte, ifMatch string) (string, error) {
	if h.beforePut != nil {
		h.beforePut(key)
	}
	return h.Store.Put(ctx, key, data, ifMatch)
}

// TestTheRegistryOnARealGateway runs the registry's guarantees through versitygw: a version is written once, of two
// racing activations one wins and the other is ErrConflict, another replica's poll sees the change, and a corrupt
// object is refused naming its key.
func TestTheRegistryOnARealGateway(t *testing.T) {
	s := gatewayStore(t)
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	hooked := &hookedStore{Store: s}
	open := func(store registry.Store) *registry.Registry {
		r, err := registry.OpenStore("s3://bucket/reg", store, embedded, registry.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := open(hooked), open(s)
	for _, v := range []string{"v1", "v2"} {
		n := embedded.Clone()
		n.Version = v
		if err := a.Put(n); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(n); !errors.Is(err, registry.ErrExists) {
			t.Fatalf("the second put of %s: got %v; want ErrExists", v, err)
		}
	}
	if v, err := b.Active(); err != nil || v != "" {
		t.Fatalf("b's active version before: %q, %v", v, err)
	}
	if _, err := a.Activate("v1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Active(); v != "" {
		t.Fatalf("b reads %q without polling; want the pointer it read", v)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Active(); v != "v1" {
		t.Fatalf("b after a poll: %q; want v1", v)
	}
	hooked.beforePut = func(key string) {
		if key == "ACTIVE" {
			hooked.beforePut = nil
			if _, err := b.Activate("v2"); err != nil {
				t.Errorf("b's activation: %v", err)
			}
		}
	}
	if _, err := a.Activate("v1"); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("the activation that lost the race: got %v; want ErrConflict", err)
	}
	if hist, err := b.History(); err != nil || strings.Join(hist, ",") != "v1,v2" {
		t.Fatalf("history %v, %v; want v1,v2", hist, err)
	}
	data, _, err := s.Get(context.Background(), "versions/v2.pcpt", "")
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if _, err := s.Put(context.Background(), "versions/v2.pcpt", data, registry.Always); err != nil {
		t.Fatal(err)
	}
	net, fellBack, err := open(s).LoadActive()
	if err != nil || net.Version != "v1" || !strings.Contains(fellBack, "object s3://bucket/reg/versions/v2.pcpt refused") {
		t.Fatalf("a fresh replica with v2 corrupt: %v, %q, %v; want v1 and a reason naming the object", net, fellBack, err)
	}
}
