// Package registry keeps model versions on disk, shared by every replica that mounts the same MODEL_DIR. Each
// version is one checksummed model file written atomically (temporary file, fsync, rename); the active version is a
// small pointer file written the same way, and every activation is appended to a history file (also written
// atomically), so that when the active version's file is damaged the registry falls back only to a version someone
// activated before, never to one nobody chose. The embedded default model is listed as a version too, so an operator can
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
	// ErrUnloadable means a version's file exists but does not load (truncated, corrupted, not a model file).
	ErrUnloadable = errors.New("model version does not load")
)

// validVersion is the shape of a version name; anything else is refused before it touches a path.
var validVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

const (
	versionsDir = "versions"
	activeFile  = "ACTIVE"
	historyFile = "HISTORY" // the versions activated, oldest first, one a line
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

// Registry is a folder of model versions. Its methods are safe for concurrent use, and several processes may share
// the folder: writes are atomic renames, so a reader sees a whole file or none.
type Registry struct {
	dir      string
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
}

// Open opens (creating it if needed) the registry in dir. embedded, the model built into the binary, is always
// listed and loadable under its own version.
func Open(dir string, embedded *model.Network) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, versionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	removeStaleTemporaries(filepath.Join(dir, versionsDir))
	removeStaleTemporaries(dir)
	return &Registry{dir: dir, embedded: embedded, cache: map[string]cached{}, load: model.Load}, nil
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
			c = cached{modTime: fi.ModTime(), size: fi.Size()}
			if net, err := r.load(filepath.Join(r.dir, versionsDir, name)); err != nil {
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

// Describe returns the entry of a network that was just loaded from the registry and made active.
func (r *Registry) Describe(net *model.Network) Entry {
	source := "registry"
	if r.embedded != nil && net.Version == r.embedded.Version {
		source = "embedded"
	}
	return Entry{Info: net.Info, Source: source, Active: true}
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

// Activate makes version the active one for every replica, after checking that it loads (ErrUnloadable if not;
// the pointer is then left as it was), and records the activation in the history. It returns the network so the
// caller can swap it in without reading it again.
func (r *Registry) Activate(version string) (*model.Network, error) {
	net, err := r.Load(version)
	if err != nil {
		return nil, err
	}
	r.histMu.Lock()
	defer r.histMu.Unlock()
	hist, herr := r.History()
	if herr == nil && len(hist) == 0 {
		// A registry from before the history was kept: the version active until now was chosen by someone too.
		if prev, err := r.Active(); err == nil && prev != "" {
			hist = []string{prev}
		}
	}
	if err := atomicfile.Write(filepath.Join(r.dir, activeFile), []byte(version+"\n")); err != nil {
		return nil, fmt.Errorf("registry: writing the active pointer: %w", r.relative(err))
	}
	// The pointer is written first: a crash between the two writes leaves the history one activation short, so a
	// fallback can only miss a version, never pick one that was not active.
	if herr == nil {
		hist = append(hist, version)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		if err := atomicfile.Write(filepath.Join(r.dir, historyFile), []byte(strings.Join(hist, "\n")+"\n")); err != nil {
			return nil, fmt.Errorf("registry: recording the activation: %w", r.relative(err))
		}
	}
	return net, nil
}

// History returns the versions that were activated, oldest first (a version activated twice is listed twice). A
// registry that never recorded one returns nil.
func (r *Registry) History() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, historyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", r.relative(err))
	}
	return parseHistory(b), nil
}

// parseHistory reads the history file's lines; a line that is not a version name (damage) is skipped, since the
// others still name versions that were active.
func parseHistory(b []byte) []string {
	var out []string
	for line := range strings.Lines(string(b)) {
		if v := strings.TrimSpace(line); validVersion.MatchString(v) {
			out = append(out, v)
		}
	}
	return out
}

// LoadActive returns the network to serve at start: the active version, or when it fails to load, the most
// recently active version before it that loads, or the embedded default. A version nobody activated (a job's
// model stored with activate=never, say) is never chosen. fellBack explains a fallback; it is empty when the
// active version (or, with none set, the embedded default) loaded.
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
	hist, herr := r.History()
	for i := len(hist) - 1; i >= 0; i-- {
		if v := hist[i]; v != active {
			if net, err := r.Load(v); err == nil {
				return net, fmt.Sprintf("the active version %q does not load (%v); serving %s, the most recent version active before it that loads", active, aerr, v), nil
			}
		}
	}
	if r.embedded != nil {
		why := "no version active before it loads"
		if herr != nil {
			why = fmt.Sprintf("the activation history does not read (%v)", herr)
		}
		return r.embedded.Clone(), fmt.Sprintf("the active version %q does not load (%v) and %s; serving the embedded default %s", active, aerr, why, r.embedded.Version), nil
	}
	return nil, "", fmt.Errorf("registry: no loadable model: %w", aerr)
}
