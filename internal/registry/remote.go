// A registry in an object store: the pointers this replica follows, kept fresh by polling their ETags, and the
// versions it downloaded, kept in a bounded local cache.

package registry

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Options set up a registry in an object store. Zero values pick the defaults noted on each field.
type Options struct {
	// CacheDir holds the versions downloaded (and the pointers last read, so that a restart with the bucket
	// unreachable serves what was active); "" means a folder under os.TempDir().
	CacheDir string
	// CacheVersions is how many downloaded versions the cache keeps at most, least recently used first out; 0
	// means 16.
	CacheVersions int
	// CacheBytes is how many bytes of downloaded versions the cache keeps at most; 0 means 1 GiB.
	CacheBytes int64
	// Timeout bounds each request to the store, retries included; 0 means 10 seconds.
	Timeout time.Duration
}

// remote is the state of a registry whose store is not a local folder.
type remote struct {
	opts Options

	mu       sync.Mutex
	pointers map[string]pointer   // by key: every pointer read so far, refreshed by Refresh
	files    map[string]cacheFile // by version: the downloaded versions on disk
	// refused remembers the versions whose object was refused (corrupt), by version: a conditional GET on that ETag
	// then costs a 304, not a download per poll while the pointer names it.
	refused map[string]refusal

	polls   [4]atomic.Uint64 // by PollResult
	errors  atomic.Uint64
	lastErr atomic.Pointer[error]
}

// pointer is a pointer object as last read.
type pointer struct {
	version string
	found   bool
	etag    string
}

// refusal is why a version's object, at one ETag, was refused.
type refusal struct {
	etag string
	err  error
}

// cacheFile is a version's file in the cache, named VERSION~ETAG.pcpt (no version name holds a "~").
type cacheFile struct {
	etag string
	size int64
	used time.Time
}

// OpenStore opens the registry kept in store; name says where it is in messages (the s3:// address). It does not
// reach the store: an unreachable bucket at start leaves the embedded default (or the versions and pointers in the
// cache) to serve, and the watch retries.
func OpenStore(name string, store Store, embedded *model.Network, opts Options) (*Registry, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(os.TempDir(), "perceptron-cache")
	}
	if opts.CacheVersions <= 0 {
		opts.CacheVersions = 16
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 1 << 30
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	for _, d := range []string{"versions", "pointers"} {
		if err := os.MkdirAll(filepath.Join(opts.CacheDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry: the cache: %w", err)
		}
	}
	rm := &remote{opts: opts, pointers: map[string]pointer{}, files: map[string]cacheFile{}, refused: map[string]refusal{}}
	des, _ := os.ReadDir(filepath.Join(opts.CacheDir, "versions"))
	for _, de := range des {
		base, ok := strings.CutSuffix(de.Name(), modelExt)
		version, etag, ok2 := strings.Cut(base, "~")
		fi, err := de.Info()
		if !ok || !ok2 || err != nil || !de.Type().IsRegular() || !validVersion.MatchString(version) {
			continue
		}
		if old, dup := rm.files[version]; dup {
			os.Remove(rm.cachePath(version, old.etag))
		}
		rm.files[version] = cacheFile{etag: etag, size: fi.Size(), used: fi.ModTime()}
	}
	return &Registry{dir: name, store: store, remote: rm, embedded: embedded, cache: map[string]cached{}, load: model.Load}, nil
}

func (rm *remote) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), rm.opts.Timeout)
}

func (rm *remote) cachePath(version, etag string) string {
	return filepath.Join(rm.opts.CacheDir, "versions", version+"~"+strings.Trim(etag, `"`)+modelExt)
}

// put writes a version once: the PUT is conditional on the key being absent, so a version that exists is never
// overwritten, and it is a single request with the whole file, so a crash leaves no partial object.
func (rm *remote) put(r *Registry, net *model.Network) error {
	data, err := model.Marshal(net)
	if err != nil {
		return err
	}
	ctx, cancel := rm.ctx()
	defer cancel()
	_, err = r.store.Put(ctx, versionsDir+"/"+net.Version+modelExt, data, IfAbsent)
	if errors.Is(err, ErrPrecondition) {
		return fmt.Errorf("%w: %s", ErrExists, net.Version)
	}
	if err != nil {
		return fmt.Errorf("registry: writing %s: %w", net.Version, r.unavailable(err))
	}
	return nil
}

// load returns a version's network: the cached file when the object's ETag is unchanged (a conditional GET), else
// the object downloaded, verified (the model file's own digest) and cached. With the store unreachable, a cached
// copy serves. A corrupt object is refused with an error naming its key.
func (rm *remote) load(r *Registry, version string) (*model.Network, error) {
	key := versionsDir + "/" + version + modelExt
	rm.mu.Lock()
	cf, have := rm.files[version]
	bad, wasRefused := rm.refused[version]
	rm.mu.Unlock()
	ctx, cancel := rm.ctx()
	defer cancel()
	if !have && wasRefused {
		_, _, err := r.store.Get(ctx, key, bad.etag)
		if errors.Is(err, ErrNotModified) {
			return nil, bad.err
		}
		rm.mu.Lock()
		delete(rm.refused, version)
		rm.mu.Unlock()
	}
	data, etag, err := r.store.Get(ctx, key, cf.etag)
	switch {
	case errors.Is(err, ErrNotModified) || err != nil && have && !errors.Is(err, fs.ErrNotExist):
		net, lerr := r.load(rm.cachePath(version, cf.etag))
		if lerr == nil && net.Version == version {
			rm.touch(version)
			return net, nil
		}
		rm.drop(version)
		if errors.Is(err, ErrNotModified) {
			return rm.load(r, version) // the cached copy is gone or damaged: download it again
		}
		return nil, fmt.Errorf("registry: %s: %w", version, r.unavailable(err))
	case errors.Is(err, fs.ErrNotExist):
		rm.drop(version)
		return nil, fmt.Errorf("%w: %s", ErrNotFound, version)
	case err != nil:
		return nil, fmt.Errorf("registry: %s: %w", version, r.unavailable(err))
	}
	if int64(len(data)) > model.MaxFileBytes {
		return nil, fmt.Errorf("%w: %s: object %s/%s is %d bytes, larger than the %d-byte limit", ErrUnloadable, version, r.dir, key, len(data), model.MaxFileBytes)
	}
	net, err := model.Unmarshal(data)
	if err != nil {
		rm.errors.Add(1)
		err = fmt.Errorf("%w: %s: object %s/%s refused: %v", ErrUnloadable, version, r.dir, key, err)
		rm.mu.Lock()
		if len(rm.refused) >= 1024 { // bounded: versions are few, and a refusal is only a saved download
			clear(rm.refused)
		}
		rm.refused[version] = refusal{etag: etag, err: err}
		rm.mu.Unlock()
		return nil, err
	}
	if net.Version != version {
		return nil, fmt.Errorf("%w: object %s/%s holds version %q", ErrUnloadable, r.dir, key, net.Version)
	}
	rm.keep(version, etag, data)
	return net, nil
}

// keep keeps a verified download in the cache and evicts the least recently used files beyond the bounds. A file
// that cannot be written only costs a download next time.
func (rm *remote) keep(version, etag string, data []byte) {
	if atomicfile.Write(rm.cachePath(version, etag), data) != nil {
		return
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if old, ok := rm.files[version]; ok && old.etag != etag {
		os.Remove(rm.cachePath(version, old.etag))
	}
	rm.files[version] = cacheFile{etag: etag, size: int64(len(data)), used: time.Now()}
	rm.evictLocked()
}

func (rm *remote) evictLocked() {
	var total int64
	versions := make([]string, 0, len(rm.files))
	for v, f := range rm.files {
		total += f.size
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b string) int { return rm.files[a].used.Compare(rm.files[b].used) })
	for _, v := range versions {
		if len(rm.files) <= rm.opts.CacheVersions && total <= rm.opts.CacheBytes {
			return
		}
		f := rm.files[v]
		os.Remove(rm.cachePath(v, f.etag))
		delete(rm.files, v)
		total -= f.size
	}
}

func (rm *remote) touch(version string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if f, ok := rm.files[version]; ok {
		f.used = time.Now()
		rm.files[version] = f
	}
}

func (rm *remote) drop(version string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if f, ok := rm.files[version]; ok {
		os.Remove(rm.cachePath(version, f.etag))
		delete(rm.files, version)
	}
}

// CachedVersions returns the versions in the download cache and their total size in bytes.
func (r *Registry) CachedVersions() (versions []string, bytes int64) {
	if r.remote == nil {
		return nil, 0
	}
	r.remote.mu.Lock()
	defer r.remote.mu.Unlock()
	for v, f := range r.remote.files {
		versions = append(versions, v)
		bytes += f.size
	}
	slices.Sort(versions)
	return versions, bytes
}

// nameOf is Registry.nameOf for a bucket: a version is immutable, so its header is read once.
func (rm *remote) nameOf(r *Registry, version string) (string, bool) {
	r.mu.Lock()
	c, hit := r.cache[version]
	r.mu.Unlock()
	if !hit {
		net, err := rm.load(r, version)
		if err != nil {
			return "", false
		}
		c = cached{info: net.Info}
		r.mu.Lock()
		if _, listed := r.cache[version]; !listed {
			r.cache[version] = c
		}
		r.mu.Unlock()
	}
	return c.info.Name, c.err == nil
}

// pointer returns a pointer object as last read, reading it the first time (and then keeping it fresh: Refresh).
// With the store unreachable the first time, the copy saved in the cache by an earlier run serves.
func (rm *remote) pointer(r *Registry, key string) (pointer, error) {
	rm.mu.Lock()
	p, ok := rm.pointers[key]
	rm.mu.Unlock()
	if ok {
		return p, nil
	}
	v, found, etag, err := r.fetchPointer(key, "")
	if err != nil {
		rm.polls[PollError].Add(1)
		rm.errors.Add(1)
		rm.lastErr.Store(&err)
		if b, rerr := os.ReadFile(rm.pointerPath(key)); rerr == nil && validVersion.Match(b) {
			// Followed from now on like any pointer read: the first poll that reaches the store replaces it.
			p = pointer{version: string(b), found: true}
			rm.mu.Lock()
			rm.pointers[key] = p
			rm.mu.Unlock()
			return p, nil
		}
		return pointer{}, err
	}
	rm.polls[PollFirst].Add(1)
	rm.lastErr.Store(nil)
	p = pointer{version: v, found: found, etag: etag}
	rm.setPointer(key, p)
	return p, nil
}

func (rm *remote) pointerPath(key string) string {
	return filepath.Join(rm.opts.CacheDir, "pointers", strings.ReplaceAll(key, "/", "~"))
}

func (rm *remote) setPointer(key string, p pointer) {
	if p.found && !etagMatches(p.etag, []byte(p.version+"\n")) {
		// The ETag answered with the pointer may not be the one of the bytes answered: a gateway that stores the
		// two apart (versitygw's POSIX backend keeps the ETag in a sidecar) can answer one write's ETag with
		// another's bytes. Kept, such an ETag would make every later poll a 304 for a version that is no longer
		// the pointer's, and the replica would never follow. Without one, the next poll reads the pointer whole.
		p.etag = ""
	}
	rm.mu.Lock()
	old, had := rm.pointers[key]
	rm.pointers[key] = p
	rm.mu.Unlock()
	if p.found && (!had || old.version != p.version) {
		atomicfile.Write(rm.pointerPath(key), []byte(p.version))
	}
}

// PollResult says how a poll of a pointer ended, for the metrics.
type PollResult int

// The outcomes of a poll.
const (
	PollUnchanged PollResult = iota // the ETag is the one last read (a 304 from a bucket)
	PollChanged                     // another replica changed the pointer
	PollError                       // the store did not answer
	PollFirst                       // the first read of a pointer, or of a missing one again
)

// PollResults lists every PollResult.
var PollResults = []PollResult{PollUnchanged, PollChanged, PollError, PollFirst}

// String names a PollResult for a metric's label.
func (p PollResult) String() string {
	return [...]string{"unchanged", "changed", "error", "first"}[p]
}

// Polls returns how many pointer polls ended each way, and how many errors the store gave (polls, downloads and
// corrupt objects), since the registry opened. A folder's registry is not polled through here: both are zero.
func (r *Registry) Polls() (byResult [4]uint64, errs uint64) {
	if r.remote == nil {
		return byResult, 0
	}
	for i := range byResult {
		byResult[i] = r.remote.polls[i].Load()
	}
	return byResult, r.remote.errors.Load()
}

// Health returns why the store failed at the last poll, nil when it answered (and for a folder, or no registry).
func (r *Registry) Health() error {
	if r == nil || r.remote == nil {
		return nil
	}
	if p := r.remote.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Refresh polls every pointer this replica has read, with a GET conditional on its ETag (one request each; an
// unchanged pointer costs a 304 and no body). It does nothing for a folder, whose pointers are read from disk
// whenever they are needed.
func (r *Registry) Refresh(ctx context.Context) error {
	rm := r.remote
	if rm == nil {
		return nil
	}
	// A missing pointer is forgotten rather than polled: any valid model name a client asks for is looked up, and
	// polling each would let clients grow the poll without bound. The next lookup of that name reads it again (at
	// most once per poll), which is how a first activation through another replica is seen.
	rm.mu.Lock()
	keys := make([]string, 0, len(rm.pointers))
	for k, p := range rm.pointers {
		if !p.found {
			delete(rm.pointers, k)
			continue
		}
		keys = append(keys, k)
	}
	rm.mu.Unlock()
	var firstErr error
	for _, key := range keys {
		rm.mu.Lock()
		old := rm.pointers[key]
		rm.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, rm.opts.Timeout)
		b, etag, err := r.store.Get(cctx, key, old.etag)
		cancel()
		switch {
		case errors.Is(err, ErrNotModified):
			rm.polls[PollUnchanged].Add(1)
			continue
		case errors.Is(err, fs.ErrNotExist):
			rm.polls[PollChanged].Add(1)
			rm.setPointer(key, pointer{})
			continue
		case err != nil:
			rm.polls[PollError].Add(1)
			rm.errors.Add(1)
			if firstErr == nil {
				firstErr = fmt.Errorf("registry: polling %s/%s: %w", r.dir, key, r.unavailable(err))
			}
			continue
		}
		v := strings.TrimSpace(string(b))
		if !validVersion.MatchString(v) {
			rm.polls[PollError].Add(1)
			rm.errors.Add(1)
			if firstErr == nil {
				firstErr = fmt.Errorf("registry: %s/%s names %q, not a version", r.dir, key, v)
			}
			continue
		}
		if etag == old.etag && v == old.version {
			rm.polls[PollUnchanged].Add(1)
		} else {
			rm.polls[PollChanged].Add(1)
		}
		rm.setPointer(key, pointer{version: v, found: true, etag: etag})
	}
	if firstErr != nil {
		rm.lastErr.Store(&firstErr)
	} else if len(keys) > 0 {
		rm.lastErr.Store(nil)
	}
	return firstErr
}

// etagMatches reports whether etag is the one S3 gives data written in one PUT: the hex MD5 of its bytes, quoted.
// An ETag of another form (a multipart upload's, an encrypted object's) is not checked and matches.
func etagMatches(etag string, data []byte) bool {
	e := strings.Trim(etag, `"`)
	if len(e) != 2*md5.Size {
		return true
	}
	if _, err := hex.DecodeString(e); err != nil {
		return true
	}
	sum := md5.Sum(data)
	return strings.EqualFold(e, hex.EncodeToString(sum[:]))
}
