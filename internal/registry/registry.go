// Package registry keeps model versions on disk, shared by every replica that mounts the same MODEL_DIR. Each
// version is one checksummed model file written atomically (temporary file, fsync, rename); the active version is a
// small pointer file written the same way. The embedded default model is listed as a version too, so an operator can
// always roll back to it. Replicas converge by watching the pointer (Watch). The registry stores and finds models;
// it does not train them (package train) or serve them (package inference).
package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Errors a caller can tell apart.
var (
	ErrNotFound = errors.New("no such model version")
	ErrExists   = errors.New("model version already exists")
	ErrInvalid  = errors.New("invalid model version name")
)

// validVersion is the shape of a version name; anything else is refused before it touches a path.
var validVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

const (
	versionsDir = "versions"
	activeFile  = "ACTIVE"
	modelExt    = ".pcpt"
)

// Entry describes one stored version.
type Entry struct {
	model.Info
	// Source is "embedded" for the default model built into the binary, "registry" for a file under MODEL_DIR.
	Source string `json:"source"`
	Active bool   `json:"active"`
}

// Registry is a folder of model versions. Its methods are safe for concurrent use, and several processes may share
// the folder: writes are atomic renames, so a reader sees a whole file or none.
type Registry struct {
	dir      string
	embedded *model.Network

	mu    sync.Mutex
	cache map[string]cached // headers of files already read, by version
}

type cached struct {
	info    model.Info
	modTime time.Time
	size    int64
}

// Open opens (creating it if needed) the registry in dir. embedded, the model built into the binary, is always
// listed and loadable under its own version.
func Open(dir string, embedded *model.Network) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, versionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	removeStaleTemporaries(filepath.Join(dir, versionsDir))
	removeStaleTemporaries(dir)
	return &Registry{dir: dir, embedded: embedded, cache: map[string]cached{}}, nil
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
	if r.embedded != nil && net.Version == r.embedded.Version {
		return fmt.Errorf("%w: %s", ErrExists, net.Version)
	}
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, net.Version)
	}
	if err := model.Save(p, net); err != nil {
		return fmt.Errorf("registry: writing %s: %w", net.Version, err)
	}
	return nil
}

// Load returns the network of a version, checking its file.
func (r *Registry) Load(version string) (*model.Network, error) {
	if r.embedded != nil && version == r.embedded.Version {
		return r.embedded.Clone(), nil
	}
	p, err := r.path(version)
	if err != nil {
		return nil, err
	}
	net, err := model.Load(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, version)
	}
	if err != nil {
		return nil, err
	}
	if net.Version != version {
		return nil, fmt.Errorf("registry: file %s holds version %q", p, net.Version)
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
	des, err := os.ReadDir(filepath.Join(r.dir, versionsDir))
	if err != nil {
		return nil, nil, fmt.Errorf("registry: %w", err)
	}
	active, _ := r.Active()
	var out []Entry
	bad := map[string]error{}
	seen := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, de := range des {
		name := de.Name()
		version, ok := strings.CutSuffix(name, modelExt)
		if !ok || !validVersion.MatchString(version) || !de.Type().IsRegular() {
			continue // temporary files of writes in progress, and anything else
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		c, ok := r.cache[version]
		if !ok || !c.modTime.Equal(fi.ModTime()) || c.size != fi.Size() {
			net, err := model.Load(filepath.Join(r.dir, versionsDir, name))
			if err != nil {
				bad[version] = err
				delete(r.cache, version)
				continue
			}
			c = cached{info: net.Info, modTime: fi.ModTime(), size: fi.Size()}
			r.cache[version] = c
		}
		seen[version] = true
		out = append(out, Entry{Info: c.info, Source: "registry", Active: version == active})
	}
	for v := range r.cache {
		if !seen[v] {
			delete(r.cache, v)
		}
	}
	if r.embedded != nil {
		out = append(out, Entry{Info: r.embedded.Info, Source: "embedded", Active: active == "" || active == r.embedded.Version})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.Version, a.Version)
	})
	return out, bad, nil
}

// Active returns the version the pointer file names, or "" when none has been activated (the embedded default then
// serves).
func (r *Registry) Active() (string, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, activeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	v := string(bytes.TrimSpace(b))
	if !validVersion.MatchString(v) {
		return "", fmt.Errorf("registry: %s names %q, not a version", activeFile, v)
	}
	return v, nil
}

// Activate makes version the active one for every replica, after checking that it loads. It returns the network
// so the caller can swap it in without reading it again.
func (r *Registry) Activate(version string) (*model.Network, error) {
	net, err := r.Load(version)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(r.dir, activeFile), []byte(version+"\n")); err != nil {
		return nil, fmt.Errorf("registry: writing the active pointer: %w", err)
	}
	return net, nil
}

// LoadActive returns the network to serve at start: the active version, or when it fails to load, the newest
// version that loads, or the embedded default. fellBack explains a fallback; it is empty when the active version
// (or, with none set, the embedded default) loaded.
func (r *Registry) LoadActive() (net *model.Network, fellBack string, err error) {
	active, aerr := r.Active()
	if aerr == nil && active == "" && r.embedded != nil {
		return r.embedded.Clone(), "", nil
	}
	if aerr == nil {
		net, err := r.Load(active)
		if err == nil {
			return net, "", nil
		}
		aerr = err
	}
	list, _ := r.List()
	for _, e := range list {
		if e.Version == active {
			continue
		}
		if net, err := r.Load(e.Version); err == nil {
			return net, fmt.Sprintf("the active version %q does not load (%v); serving %s instead", active, aerr, e.Version), nil
		}
	}
	return nil, "", fmt.Errorf("registry: no loadable model: %w", aerr)
}
