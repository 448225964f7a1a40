// Package registry keeps model versions in a Store shared by every replica: a folder they all mount (MODEL_DIR), or
// an S3 bucket (MODEL_DIR=s3://bucket/prefix, through package s3store) with the same layout under its prefix. Each
// version is one checksummed model file written once, whole (on disk: temporary file, fsync, rename; in a bucket: a
// single PUT only if the key is absent); the active version is a small pointer object changed with a write
// conditional on its ETag, so of two activations at once one wins and the other is ErrConflict, and every activation is appended to a history file (also written
// atomically), so that when the active version's file is damaged the registry falls back only to a version someone
// activated before, never to one nobody chose. The embedded default model is listed as a version too, so an operator can
// always roll back to it. Replicas converge by watching the pointer (Watch).
//
// Versions belong to named models: a version's model is the Name its file's header gives, and each model name has
// its own pointer and history. The embedded model's name keeps the files at the top of the folder (ACTIVE and
// HISTORY, where a registry from before named models kept its one pointer); every other name has them under
// models/NAME/. A pointer at the top that names a version of another model is that model's pointer until the model
// is activated under its own name (this is how a registry with one pointer migrates, without a write at start). The registry stores and finds models;
// it does not train them (package train) or serve them (package inference).
package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// Errors a caller can tell apart.
var (
	ErrNotFound = errors.New("no such model version")
	ErrExists   = errors.New("model version already exists")
	ErrInvalid  = errors.New("invalid model version name")
	// ErrUnloadable means a version's file exists but does not load (truncated, corrupted, not a model file).
	ErrUnloadable = errors.New("model version does not load")
	// ErrNoActive means a model name has no version that was ever activated and no embedded default.
	ErrNoActive = errors.New("model has no active version")
	// ErrConflict means another activation of the same model changed its pointer between this one's read and
	// write; the other one won.
	ErrConflict = errors.New("another activation of this model won")
	// ErrUnavailable means the store did not answer (an unreachable bucket, say).
	ErrUnavailable = errors.New("the model store is unavailable")
)

// validVersion is the shape of a version name, and of a model name; anything else is refused before it touches a
// path.
var validVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

const (
	versionsDir = "versions"
	activeFile  = "ACTIVE"
	historyFile = "HISTORY" // the versions activated, oldest first, one a line
	modelsDir   = "models"  // models/NAME/ACTIVE and models/NAME/HISTORY for every name but the embedded model's
	modelExt    = ".pcpt"
	// maxHistory bounds the history file; older activations than that are not fallen back to.
	maxHistory = 100
)

// Entry describes one stored version.
type Entry struct {
	model.Info
	// Source is "embedded" for the default model built into the binary, "registry" for a file under MODEL_DIR.
	Source string `json:"source"`
	Active bool   `json:"active"`
}

// Registry is a store of model versions. Its methods are safe for concurrent use, and several processes may share
// the store: every write is of a whole object, so a reader sees a whole one or none.
type Registry struct {
	dir      string // the folder, or the s3:// address, for messages
	store    Store
	remote   *remote // nil for a folder
	embedded *model.Network

	mu    sync.Mutex
	cache map[string]cached // headers of files already read (or failures to read them), by version
	// histMu serialises this process's updates of the history file (read, append, write).
	histMu sync.Mutex
	// load reads a model file; tests count its calls.
	load func(path string) (*model.Network, error)
}

// cached is what reading a version's file gave, valid while the file keeps its size and modification time: a
// damaged file is not read again on every listing, however large it is.
type cached struct {
	info    model.Info
	err     error
	modTime time.Time
	size    int64
	etag    string
}

// same reports whether a listed object is the one whose header c holds.
func (c cached) same(o Object) bool {
	return c.modTime.Equal(o.ModTime) && c.size == o.Size && c.etag == o.ETag
}

// Open opens (creating it if needed) the registry in dir. embedded, the model built into the binary, is always
// listed and loadable under its own version.
func Open(dir string, embedded *model.Network) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, versionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	removeStaleTemporaries(filepath.Join(dir, versionsDir))
	removeStaleTemporaries(dir)
	return &Registry{dir: dir, store: &dirStore{dir: dir}, embedded: embedded, cache: map[string]cached{}, load: model.Load}, nil
}

// staleAfter is how old a temporary file must be before Open removes it: a write by another replica is never that
// slow, so an older one was left by a crash.
const staleAfter = 10 * time.Minute

// removeStaleTemporaries deletes the temporary files (".name.tmpNNN") of writes that a crash cut off.
func removeStaleTemporaries(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, ".") || !strings.Contains(name, ".tmp") || !de.Type().IsRegular() {
			continue
		}
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// Dir returns the registry's folder.
func (r *Registry) Dir() string { return r.dir }

func (r *Registry) path(version string) (string, error) {
	if !validVersion.MatchString(version) {
		return "", fmt.Errorf("%w: %q", ErrInvalid, version)
	}
	return filepath.Join(r.dir, versionsDir, version+modelExt), nil
}

// Put stores net under net.Version. It refuses a version that exists (versions are immutable) and writes
// atomically, so a crash leaves either no file or a whole one.
func (r *Registry) Put(net *model.Network) error {
	p, err := r.path(net.Version)
	if err != nil {
		return err
	}
	if !validVersion.MatchString(net.Name) {
		return fmt.Errorf("%w: model name %q (letters, digits, '.', '_' and '-', at most 64)", ErrInvalid, net.Name)
	}
	if r.embedded != nil && net.Version == r.embedded.Version {
		return fmt.Errorf("%w: %s", ErrExists, net.Version)
	}
	if r.remote != nil {
		return r.remote.put(r, net)
	}
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, net.Version)
	}
	if err := model.Save(p, net); err != nil {
		return fmt.Errorf("registry: writing %s: %w", net.Version, r.relative(err))
	}
	return nil
}

// relative rewrites the registry's folder out of an error's message (paths read relative to MODEL_DIR), keeping
// the error for errors.Is: messages reach API clients, which have no business knowing the server's file layout.
func (r *Registry) relative(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), r.dir+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, r.dir, "MODEL_DIR")
	return &relativeError{msg: msg, err: err}
}

type relativeError struct {
	msg string
	err error
}

func (e *relativeError) Error() string { return e.msg }
func (e *relativeError) Unwrap() error { return e.err }

// Load returns the network of a version, checking its file.
func (r *Registry) Load(version string) (*model.Network, error) {
	if r.embedded != nil && version == r.embedded.Version {
		return r.embedded.Clone(), nil
	}
	p, err := r.path(version)
	if err != nil {
		return nil, err
	}
	if r.remote != nil {
		return r.remote.load(r, version)
	}
	net, err := r.load(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, version)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnloadable, version, r.relative(err))
	}
	if net.Version != version {
		return nil, fmt.Errorf("%w: the file of %s holds version %q", ErrUnloadable, version, net.Version)
	}
	return net, nil
}

// Get returns the description of one version.
func (r *Registry) Get(version string) (Entry, error) {
	list, err := r.List()
	if err != nil {
		return Entry{}, err
	}
	if !validVersion.MatchString(version) {
		return Entry{}, fmt.Errorf("%w: %q", ErrInvalid, version)
	}
	for _, e := range list {
		if e.Version == version {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, version)
}

// List returns every version, newest first, with the active one marked. Files that do not load (corrupted,
// truncated) are left out; Problems reports them.
func (r *Registry) List() ([]Entry, error) {
	entries, _, err := r.scan()
	return entries, err
}

// Problems lists the version files that fail to load, with why.
func (r *Registry) Problems() (map[string]error, error) {
	_, bad, err := r.scan()
	return bad, err
}

func (r *Registry) scan() ([]Entry, map[string]error, error) {
	ctx, cancel := r.opCtx()
	defer cancel()
	objs, err := r.store.List(ctx, versionsDir+"/")
	if err != nil {
		return nil, nil, fmt.Errorf("registry: %w", r.unavailable(err))
	}
	var out []Entry
	bad := map[string]error{}
	seen := map[string]bool{}
	r.mu.Lock()
	for _, o := range objs {
		version, ok := strings.CutSuffix(path.Base(o.Key), modelExt)
		if !ok || !validVersion.MatchString(version) {
			continue // temporary files of writes in progress, and anything else
		}
		c, ok := r.cache[version]
		if !ok || !c.same(o) {
			c = cached{modTime: o.ModTime, size: o.Size, etag: o.ETag}
			if net, err := r.readHeader(version); err != nil {
				c.err = r.relative(err)
			} else {
				c.info = net.Info
			}
			r.cache[version] = c
		}
		seen[version] = true
		if c.err != nil {
			bad[version] = c.err
			continue
		}
		out = append(out, Entry{Info: c.info, Source: "registry"})
	}
	for v := range r.cache {
		if !seen[v] {
			delete(r.cache, v)
		}
	}
	r.mu.Unlock()
	if r.embedded != nil {
		out = append(out, Entry{Info: r.embedded.Info, Source: "embedded"})
	}
	actives := map[string]string{}
	for i, e := range out {
		active, ok := actives[e.Name]
		if !ok {
			active, _ = r.ActiveOf(e.Name)
			actives[e.Name] = active
		}
		out[i].Active = e.Version == active || e.Source == "embedded" && active == ""
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.Version, a.Version)
	})
	return out, bad, nil
}

// readHeader reads a version's file to learn what it holds: from the folder, or through the download cache.
func (r *Registry) readHeader(version string) (*model.Network, error) {
	if r.remote != nil {
		return r.remote.load(r, version)
	}
	return r.load(filepath.Join(r.dir, versionsDir, version+modelExt))
}

// opCtx bounds a request to the store (a folder's operations are not cancellable, and need no bound).
func (r *Registry) opCtx() (context.Context, context.CancelFunc) {
	if r.remote != nil {
		return r.remote.ctx()
	}
	return context.Background(), func() {}
}

// unavailable marks an error of the store other than a missing object as ErrUnavailable, for a bucket; a folder's
// errors are returned as they are.
func (r *Registry) unavailable(err error) error {
	if r.remote == nil || err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrPrecondition) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Describe returns the entry of a network that was just loaded from the registry and made active.
func (r *Registry) Describe(net *model.Network) Entry {
	source := "registry"
	if r.embedded != nil && net.Version == r.embedded.Version {
		source = "embedded"
	}
	return Entry{Info: net.Info, Source: source, Active: true}
}
