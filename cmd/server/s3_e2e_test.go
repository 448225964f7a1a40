package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// The object store of the end-to-end test: versitygw's root user, its bucket and the registry's prefix in it.
const (
	s3AccessKey = "perceptron-e2e"
	s3SecretKey = "perceptron-e2e-secret"
	s3Bucket    = "perceptron"
	s3Prefix    = "registry"
)

// versitygwBinary finds versitygw: PERCEPTRON_VERSITYGW, the PATH, or GOPATH/bin, where `go install` puts it.
// Without it the test is skipped, unless PERCEPTRON_S3 is set (.ci/run installs it and sets both): then it fails.
func versitygwBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PERCEPTRON_VERSITYGW"); p != "" {
		if !fileExists(p) {
			t.Fatalf("PERCEPTRON_VERSITYGW=%s does not exist", p)
		}
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw"); fileExists(p) {
			return p
		}
	}
	if os.Getenv("PERCEPTRON_S3") != "" {
		t.Fatal("versitygw is not installed, and PERCEPTRON_S3 is set")
	}
	t.Skip("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0; .ci/run does)")
	return ""
}

// gateway is a versitygw process serving a POSIX folder: root holds one folder per bucket, and an object's bytes are
// the file at root/bucket/key, so a test can damage an object behind the gateway's back.
type gateway struct {
	url  string
	root string
}

// objectPath is the file that holds the registry's object key (a key under the prefix, such as "ACTIVE").
func (g *gateway) objectPath(key string) string {
	return filepath.Join(g.root, s3Bucket, s3Prefix, filepath.FromSlash(key))
}

// startGateway runs versitygw's POSIX backend on a loopback port, with object metadata in a sidecar folder (so the
// test's file system needs no extended attributes), and an empty bucket.
func startGateway(t *testing.T, bin string) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{root: filepath.Join(dir, "root")}
	for _, d := range []string{filepath.Join(g.root, s3Bucket), filepath.Join(dir, "sidecar")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// versitygw prints the port it was given, not the one it bound, so the test picks a free one; another process
	// may take it first, and then versitygw exits and the test tries another.
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(bin, "--port", addr, "--access", s3AccessKey, "--secret", s3SecretKey, "--region", "us-east-1",
			"--quiet", "posix", "--sidecar", filepath.Join(dir, "sidecar"), g.root)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		var gone bool
		testwait.For(t, "versitygw to listen on "+addr, func() bool {
			select {
			case <-exited:
				gone = true
				return true
			default:
			}
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if !gone {
			g.url = "http://" + addr
			return g
		}
		if attempt == 3 {
			t.Fatalf("versitygw exited before listening, %d times; the last time:\n%s", attempt, out.String())
		}
	}
}

// s3Proxy stands between one replica and the gateway: it counts the replica's object-store requests and lets the
// test hold requests at chosen points, so that races and crashes happen where the test wants them rather than when
// the scheduler happens to allow. It forwards requests unchanged (SigV4 signs the Host header, which it keeps).
type s3Proxy struct {
	url      string
	requests atomic.Int64
	inflight atomic.Int64 // requests not yet answered
	// down, set, makes the gateway unreachable for this replica: every connection is closed without an answer.
	down  atomic.Bool
	hooks *s3Hooks
}

// s3Hooks are shared by the proxies of one test.
type s3Hooks struct {
	mu sync.Mutex
	// barrier, when not nil, holds every conditional PUT of a pointer or history object (the first write of an
	// activation) until barrierN of them are waiting, then lets them all go.
	barrier  chan struct{}
	barrierN int
	waiting  int
	// cut, when not nil, is an upload to break: the first PUT of a version object stops half-way through its body,
	// reports its key on cut.reached, and once cut.release is closed fails, as a connection from a killed client
	// does; the gateway then sees a truncated upload.
	cut *uploadCut
}

type uploadCut struct {
	reached chan string
	release chan struct{}
}

func (h *s3Hooks) armBarrier(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.barrier, h.barrierN, h.waiting = make(chan struct{}), n, 0
}

func (h *s3Hooks) armCut() *uploadCut {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cut = &uploadCut{reached: make(chan string, 1), release: make(chan struct{})}
	return h.cut
}

// isVersionKey tells a version object's path from a pointer's or a history's.
func isVersionKey(p string) bool { return strings.Contains(p, "/"+s3Prefix+"/versions/") }

func (h *s3Hooks) before(r *http.Request) {
	if r.Method != http.MethodPut {
		return
	}
	conditional := r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != ""
	h.mu.Lock()
	if isVersionKey(r.URL.Path) {
		if cut := h.cut; cut != nil {
			h.cut = nil
			r.Body = &cutBody{r: r.Body, left: r.ContentLength / 2, cut: cut, key: r.URL.Path}
		}
		h.mu.Unlock()
		return
	}
	b := h.barrier
	if b == nil || !conditional {
		h.mu.Unlock()
		return
	}
	h.waiting++
	if h.waiting == h.barrierN {
		h.barrier = nil
		close(b)
	}
	h.mu.Unlock()
	select {
	case <-b:
	case <-r.Context().Done():
	}
}

// cutBody passes the first half of a body through, then waits for the release and fails.
type cutBody struct {
	r    io.ReadCloser
	left int64
	cut  *uploadCut
	key  string
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.cut.reached <- b.key
		<-b.cut.release
		return 0, errors.New("the client was killed during the upload")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }

func startS3Proxy(t *testing.T, g *gateway, hooks *s3Hooks) *s3Proxy {
	t.Helper()
	target, err := url.Parse(g.url)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{hooks: hooks}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signature covers the Host the client sent
		},
		// A broken upload is the point of the cut hook; its error is reported by the test, not here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.inflight.Add(1)
		defer p.inflight.Add(-1)
		if p.down.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		hooks.before(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// s3Env is the environment of a replica whose object store is reached through endpoint: the standard AWS
// variables, with whatever the machine has of them overridden.
func s3Env(endpoint string, extra ...string) []string {
	return append([]string{
		"MODEL_DIR=s3://" + s3Bucket + "/" + s3Prefix,
		"AWS_ENDPOINT_URL=" + endpoint, "AWS_ENDPOINT_URL_S3=",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=",
		"AWS_ACCESS_KEY_ID=" + s3AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3SecretKey, "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_ROLE_ARN=",
		"S3_FORCE_PATH_STYLE=true",
		"ADMIN_TOKEN=s3-token",
	}, extra...)
}

// predictLoop keeps one client predicting against each base until stop is closed, and counts answers that are not
// 200 (or no answer at all).
type predictLoop struct {
	stop          chan struct{}
	wg            sync.WaitGroup
	ok, failed    []atomic.Int64
	firstFailures sync.Map
}

func startPredictLoop(t *testing.T, bases []string) *predictLoop {
	img, _ := mnistPNG(t, 0)
	l := &predictLoop{stop: make(chan struct{}), ok: make([]atomic.Int64, len(bases)), failed: make([]atomic.Int64, len(bases))}
	client := &http.Client{Timeout: time.Minute}
	for i, base := range bases {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Post(base+"/predict", "image/png", bytes.NewReader(img))
				if err != nil {
					l.failed[i].Add(1)
					l.firstFailures.LoadOrStore(i, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed[i].Add(1)
					l.firstFailures.LoadOrStore(i, fmt.Sprintf("%s: %s", resp.Status, body))
					continue
				}
				l.ok[i].Add(1)
				time.Sleep(2 * time.Millisecond) // leave the two cores to the replicas and the gateway
			}
		})
	}
	return l
}

func (l *predictLoop) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for i := range l.ok {
		first, _ := l.firstFailures.Load(i)
		t.Logf("replica %d: %d predictions answered 200, %d not", i, l.ok[i].Load(), l.failed[i].Load())
		if l.failed[i].Load() != 0 {
			t.Errorf("replica %d: %d predictions failed during the swaps (first: %v)", i, l.failed[i].Load(), first)
		}
		if l.ok[i].Load() == 0 {
			t.Errorf("replica %d answered no prediction", i)
		}
	}
}

// TestS3RegistryEndToEnd runs three server processes on one bucket of a real S3 gateway (versitygw, POSIX backend)
// and checks the registry's promises there: a version trained and activated through one replica is served by all
// three; two activations at the same moment through two replicas end with one 200 and one 409; a replica killed
// with SIGKILL half-way through uploading a version leaves a bucket from which a fresh replica starts and serves;
// a version object damaged in the store is refused with a log line naming it; and /predict answers 200 on every
// replica throughout. It logs the time the replicas take to converge and the object-store requests each makes.
func TestS3RegistryEndToEnd(t *testing.T) {
	gw := startGateway(t, versitygwBinary(t))
	bin := buildServer(t)
	hooks := &s3Hooks{}
	// A short WATCH_INTERVAL keeps the test quick; PERCEPTRON_S3_WATCH sets another, to measure convergence at it.
	watch := 200 * time.Millisecond
	if v := os.Getenv("PERCEPTRON_S3_WATCH"); v != "" {
		var err error
		if watch, err = time.ParseDuration(v); err != nil {
			t.Fatalf("PERCEPTRON_S3_WATCH=%q: %v", v, err)
		}
	}
	var proxies []*s3Proxy
	var procs []*process
	var bases []string
	started := time.Now()
	for range 3 {
		px := startS3Proxy(t, gw, hooks)
		p := startProc(t, bin, s3Env(px.url, "DATA_DIR="+t.TempDir(), "CACHE_DIR="+t.TempDir(),
			"WATCH_INTERVAL="+watch.String(), "LOG_LEVEL=info")...)
		proxies, procs, bases = append(proxies, px), append(procs, p), append(bases, p.base)
	}
	original := servingVersion(t, bases[0])
	for i, b := range bases {
		if v := servingVersion(t, b); v != original {
			t.Fatalf("replica %d serves %q at start; replica 0 serves %q", i, v, original)
		}
	}
	loop := startPredictLoop(t, bases)

	// converge waits until every replica (or those of only) serves want, and returns how long that took from since;
	// a replica that does not is reported with the bucket's pointer, its /readyz and its log.
	converge := func(want string, since time.Time, only ...int) time.Duration {
		t.Helper()
		deadline := testwait.Deadline(t)
		for i, b := range bases {
			if len(only) > 0 && !slices.Contains(only, i) {
				continue
			}
			for servingVersion(t, b) != want {
				if time.Now().After(deadline) {
					pointer, _ := os.ReadFile(gw.objectPath("ACTIVE"))
					_, ready := apitest.Do(t, "GET", b+"/readyz", "", "")
					t.Fatalf("replica %d does not serve %s after %v; the bucket's ACTIVE is %q; its /readyz: %s; its log:\n%s",
						i, want, time.Since(since).Round(time.Millisecond), pointer, ready, procs[i].stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		return time.Since(since)
	}
	activate := func(i int, version string) (int, string) {
		t.Helper()
		resp, body := apitest.Do(t, "POST", bases[i]+"/models/"+version+"/activate", "s3-token", "")
		return resp.StatusCode, string(body)
	}

	// Publish and activate through replica 0; the others follow.
	trained := trainVersion(t, bases[0], "s3-token", s3TrainRequest(16, "always"))
	d := converge(trained, time.Now())
	t.Logf("after training, all replicas serve %s within %v of the job's end", trained, d.Round(time.Millisecond))
	if _, err := os.Stat(gw.objectPath("versions/" + trained + ".pcpt")); err != nil {
		t.Errorf("the trained version is not an object in the bucket: %v", err)
	}
	spare := trainVersion(t, bases[1], "s3-token", s3TrainRequest(12, "never"))
	if spare == trained || spare == original {
		t.Fatalf("the second job stored %s, a version that existed", spare)
	}

	// Convergence after activations through each replica in turn.
	var times []time.Duration
	for i, v := range []string{spare, original, trained, spare, original, trained} {
		r := i % 3
		at := time.Now()
		if code, body := activate(r, v); code != http.StatusOK {
			t.Fatalf("activate %s through replica %d: %d %s", v, r, code, body)
		}
		times = append(times, converge(v, at))
	}
	slices.Sort(times)
	t.Logf("convergence after an activation (WATCH_INTERVAL=%v): median %v, min %v, max %v over %d activations",
		watch, times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond),
		times[len(times)-1].Round(time.Millisecond), len(times))

	// Two activations at once, through replicas 1 and 2: the proxies hold both first conditional writes until
	// both are on their way, so they raced on the same ETag.
	hooks.armBarrier(2)
	type result struct {
		code int
		body string
	}
	results := make(chan result, 2)
	for i, v := range map[int]string{1: spare, 2: original} {
		go func() {
			req, _ := http.NewRequest("POST", bases[i]+"/models/"+v+"/activate", nil)
			req.Header.Set("Authorization", "Bearer s3-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{0, err.Error()}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, string(body)}
		}()
	}
	var codes []int
	for range 2 {
		select {
		case r := <-results:
			codes = append(codes, r.code)
			if r.code != http.StatusOK {
				t.Logf("concurrent activation: %d %s", r.code, strings.TrimSpace(r.body))
			}
		case <-time.After(testwait.Timeout(t)):
			t.Fatal("the concurrent activations did not answer")
		}
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []int{http.StatusOK, http.StatusConflict}) {
		t.Errorf("two concurrent activations answered %v; want one 200 and one 409", codes)
	}
	pointer, err := os.ReadFile(gw.objectPath("ACTIVE"))
	if err != nil {
		t.Fatal(err)
	}
	winner := strings.TrimSpace(string(pointer))
	if winner != spare && winner != original {
		t.Fatalf("after the race the bucket's ACTIVE is %q; want %s or %s", winner, spare, original)
	}
	converge(winner, time.Now())

	// A fourth replica is killed with SIGKILL half-way through uploading the version it trained.
	cut := hooks.armCut()
	killPx := startS3Proxy(t, gw, hooks)
	victim := startProc(t, bin, s3Env(killPx.url, "DATA_DIR="+t.TempDir(), "CACHE_DIR="+t.TempDir())...)
	code, job := apitest.JSON(t, "POST", victim.base+"/train", "s3-token", `{"hidden":[20],"epochs":1,"limit":2000,"activate":"always"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /train: %d %v", code, job)
	}
	var key string
	select {
	case key = <-cut.reached:
	case <-victim.exited:
		t.Fatalf("the replica exited before uploading:\n%s", victim.stderr.String())
	case <-time.After(testwait.Timeout(t)):
		t.Fatal("the replica never uploaded its version")
	}
	victim.cmd.Process.Kill()
	<-victim.exited
	close(cut.release)
	t.Logf("killed a replica half-way through PUT %s", key)
	// Once the proxy has the gateway's answer to the broken upload, the partial object must not exist.
	testwait.For(t, "the gateway to answer the broken upload", func() bool { return killPx.inflight.Load() == 0 })
	name := filepath.Base(key)
	if _, err := os.Stat(filepath.Join(gw.root, filepath.FromSlash(strings.TrimPrefix(key, "/")))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the broken upload of %s the bucket holds it (stat: %v); want no object", name, err)
	}
	if pointer, _ := os.ReadFile(gw.objectPath("ACTIVE")); strings.TrimSpace(string(pointer)) != winner {
		t.Errorf("after the kill the bucket's ACTIVE is %q; want %s, as before", pointer, winner)
	}

	// Damage a stored version behind the gateway's back (its ETag and metadata stay as they were): the fresh
	// replica below, which never downloaded it, refuses to activate it and says why.
	damaged := trained // never the winner of the race, which was spare or original
	obj := gw.objectPath("versions/" + damaged + ".pcpt")
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+64 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A fresh replica starts from that bucket and serves the active version.
	freshPx := startS3Proxy(t, gw, hooks)
	fresh := startProc(t, bin, s3Env(freshPx.url, "DATA_DIR="+t.TempDir(), "CACHE_DIR="+t.TempDir(), "LOG_LEVEL=info")...)
	if v := servingVersion(t, fresh.base); v != winner {
		t.Errorf("a fresh replica after the kill serves %q; want %s (%s was being uploaded)", v, winner, name)
	}
	img, _ := mnistPNG(t, 0)
	if resp, body := apitest.Send(t, "POST", fresh.base+"/predict", "", "image/png", img); resp.StatusCode != http.StatusOK {
		t.Errorf("the fresh replica's /predict: %d %s", resp.StatusCode, body)
	}

	code, body := func() (int, string) {
		resp, body := apitest.Do(t, "POST", fresh.base+"/models/"+damaged+"/activate", "s3-token", "")
		return resp.StatusCode, string(body)
	}()
	if code < 400 || code >= 500 {
		t.Errorf("activating the damaged version %s: %d %s; want a 4xx refusal", damaged, code, body)
	}
	t.Logf("activating the damaged version: %d %s", code, strings.TrimSpace(body))
	refusal := func() string {
		for _, line := range strings.Split(fresh.stderr.String(), "\n") {
			if strings.Contains(line, "versions/"+damaged+".pcpt") && strings.Contains(line, "checksum") {
				return line
			}
		}
		return ""
	}
	testwait.For(t, "a log line naming the damaged object and its checksum", func() bool { return refusal() != "" })
	t.Logf("the fresh replica logs: %s", refusal())
	if pointer, _ := os.ReadFile(gw.objectPath("ACTIVE")); strings.TrimSpace(string(pointer)) != winner {
		t.Errorf("after the refused activation the bucket's ACTIVE is %q; want %s", pointer, winner)
	}

	// The bucket becomes unreachable for replica 2 while an activation goes through replica 0: replica 2 keeps
	// serving what it served, says why in /readyz, and follows once the bucket is back.
	storeError := func(base string) string {
		_, r := apitest.JSON(t, "GET", base+"/readyz", "", "")
		e, _ := r["registry"].(string)
		return e
	}
	proxies[2].down.Store(true)
	testwait.For(t, "replica 2's /readyz to name the store's error", func() bool { return storeError(bases[2]) != "" })
	t.Logf("with the bucket unreachable, replica 2's /readyz says: %s", storeError(bases[2]))
	next := original
	if winner == original {
		next = spare
	}
	if code, body := activate(0, next); code != http.StatusOK {
		t.Fatalf("activate %s through replica 0: %d %s", next, code, body)
	}
	converge(next, time.Now(), 0, 1)
	if v := servingVersion(t, bases[2]); v != winner {
		t.Errorf("replica 2, cut off from the bucket, serves %q; want %s, what it served", v, winner)
	}
	proxies[2].down.Store(false)
	back := time.Now()
	testwait.For(t, "replica 2 to follow once the bucket is back", func() bool {
		return servingVersion(t, bases[2]) == next && storeError(bases[2]) == ""
	})
	t.Logf("replica 2 served %s and cleared the error %v after the bucket came back (the watch backs off while it fails)",
		next, time.Since(back).Round(time.Millisecond))

	loop.finish(t)
	elapsed := time.Since(started)
	for i, px := range proxies {
		n := px.requests.Load()
		t.Logf("replica %d: %d object-store requests in %v (%.0f a minute, polls and the test's own operations)",
			i, n, elapsed.Round(time.Second), float64(n)/elapsed.Minutes())
	}
}

// s3TrainRequest is a small training job; the hidden sizes differ between the test's jobs so that two jobs finishing
// in the same second never store one version.
func s3TrainRequest(hidden int, activate string) string {
	return fmt.Sprintf(`{"hidden":[%d],"epochs":1,"limit":2000,"activate":%q}`, hidden, activate)
}
