// Package registry keeps model versions on disk, shared by every replica that mounts the same MODEL_DIR. Each
// version is one checksummed model file written atomically (temporary file, fsync, rename); the active version is a
// small pointer file written the same way, and every activation is appended to a history file (also written
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
	// ErrNoActive means a model name has no version that was ever activated and no embedded default.
	ErrNoActive = errors.New("model has no active version")
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
	if !validVersion.MatchString(net.Name) {
		return fmt.Errorf("%w: model name %q (letters, digits, '.', '_' and '-', at most 64)", ErrInvalid, net.Name)
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
	var out []Entry
	bad := map[string]error{}
	seen := map[string]bool{}
	r.mu.Lock()
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

// Describe returns the entry of a network that was just loaded from the registry and made active.
func (r *Registry) Describe(net *model.Network) Entry {
	source := "registry"
	if r.embedded != nil && net.Version == r.embedded.Version {
		source = "embedded"
	}
	return Entry{Info: net.Info, Source: source, Active: true}
}

// DefaultName is the name of the embedded model, "" when the registry has none.
func (r *Registry) DefaultName() string {
	if r.embedded == nil {
		return ""
	}
	return r.embedded.Name
}

// files returns the paths of a model name's pointer and history files.
func (r *Registry) files(name string) (active, history string, err error) {
	if !validVersion.MatchString(name) {
		return "", "", fmt.Errorf("%w: model name %q", ErrInvalid, name)
	}
	if name == r.DefaultName() {
		return filepath.Join(r.dir, activeFile), filepath.Join(r.dir, historyFile), nil
	}
	return filepath.Join(r.dir, modelsDir, name, activeFile), filepath.Join(r.dir, modelsDir, name, historyFile), nil
}

// nameOf returns the model name a version belongs to, reading its file's header (once while the file is
// unchanged); ok is false when the version does not exist or does not load.
func (r *Registry) nameOf(version string) (name string, ok bool) {
	if r.embedded != nil && version == r.embedded.Version {
		return r.embedded.Name, true
	}
	p, err := r.path(version)
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, hit := r.cache[version]
	if !hit || !c.modTime.Equal(fi.ModTime()) || c.size != fi.Size() {
		c = cached{modTime: fi.ModTime(), size: fi.Size()}
		if net, err := r.load(p); err != nil {
			c.err = r.relative(err)
		} else {
			c.info = net.Info
		}
		r.cache[version] = c
	}
	return c.info.Name, c.err == nil
}

// readPointer reads a pointer file; found is false when there is none.
func readPointer(path string) (version string, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("registry: %w", err)
	}
	v := string(bytes.TrimSpace(b))
	if !validVersion.MatchString(v) {
		return "", false, fmt.Errorf("registry: %s names %q, not a version", filepath.Base(path), v)
	}
	return v, true, nil
}

// Active returns the active version of the embedded model (see ActiveOf).
func (r *Registry) Active() (string, error) { return r.ActiveOf(r.DefaultName()) }

// ActiveOf returns the version the pointer of model name names, or "" when none has been activated (for the
// embedded model's name, the embedded default then serves).
func (r *Registry) ActiveOf(name string) (string, error) {
	activePath, _, err := r.files(name)
	if err != nil {
		return "", err
	}
	v, found, err := readPointer(activePath)
	if err != nil {
		return "", err
	}
	top := name == r.DefaultName()
	if !found && !top {
		// A registry from before named models kept one pointer at the top; it is this model's while it names one
		// of its versions.
		if v, found, err = readPointer(filepath.Join(r.dir, activeFile)); err != nil || !found {
			return "", err
		}
		if owner, ok := r.nameOf(v); !ok || owner != name {
			return "", nil
		}
		return v, nil
	}
	if found && top && r.DefaultName() != "" {
		// The top pointer of an older registry may name another model's version (it had one slot for all); a
		// version that does not load is kept, so that LoadActiveOf reports it and falls back.
		if owner, ok := r.nameOf(v); ok && owner != name {
			return "", nil
		}
	}
	return v, nil
}

// Names returns every model name that has a version, sorted, the embedded model's included.
func (r *Registry) Names() ([]string, error) {
	list, err := r.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ListOf returns the versions of model name, newest first, with its active one marked; ErrNotFound when the name
// has none.
func (r *Registry) ListOf(name string) ([]Entry, error) {
	if !validVersion.MatchString(name) {
		return nil, fmt.Errorf("%w: model name %q", ErrInvalid, name)
	}
	list, err := r.List()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range list {
		if e.Name == name {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no model named %s", ErrNotFound, name)
	}
	return out, nil
}

// Activate makes version the active one of its model (the name its header gives) for every replica, after checking
// that it loads (ErrUnloadable if not; the pointer is then left as it was), and records the activation in that
// model's history. It returns the network so the caller can swap it in without reading it again.
func (r *Registry) Activate(version string) (*model.Network, error) {
	net, err := r.Load(version)
	if err != nil {
		return nil, err
	}
	activePath, historyPath, err := r.files(net.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: version %s cannot be activated under its model name", err, version)
	}
	r.histMu.Lock()
	defer r.histMu.Unlock()
	if net.Name == r.DefaultName() {
		if err := r.migrateTop(); err != nil {
			return nil, err
		}
	}
	hist, herr := r.HistoryOf(net.Name)
	if herr == nil && len(hist) == 0 {
		// A registry from before the history was kept: the version active until now was chosen by someone too.
		if prev, err := r.ActiveOf(net.Name); err == nil && prev != "" {
			hist = []string{prev}
		}
	}
	if err := os.MkdirAll(filepath.Dir(activePath), 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", r.relative(err))
	}
	if err := atomicfile.Write(activePath, []byte(version+"\n")); err != nil {
		return nil, fmt.Errorf("registry: writing the active pointer: %w", r.relative(err))
	}
	// The pointer is written first: a crash between the two writes leaves the history one activation short, so a
	// fallback can only miss a version, never pick one that was not active.
	if herr == nil {
		hist = append(hist, version)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		if err := atomicfile.Write(historyPath, []byte(strings.Join(hist, "\n")+"\n")); err != nil {
			return nil, fmt.Errorf("registry: recording the activation: %w", r.relative(err))
		}
	}
	return net, nil
}

// migrateTop gives the model that the top pointer of an older registry names its own pointer and history, before
// the embedded model's activation overwrites the top pointer. It does nothing when the top pointer names a version
// of the embedded model, names none, or its model already has its own pointer.
func (r *Registry) migrateTop() error {
	v, found, err := readPointer(filepath.Join(r.dir, activeFile))
	if err != nil || !found {
		return nil
	}
	owner, ok := r.nameOf(v)
	if !ok || owner == r.DefaultName() {
		return nil
	}
	activePath, historyPath, err := r.files(owner)
	if err != nil {
		return nil
	}
	if _, err := os.Stat(activePath); err == nil {
		return nil
	}
	hist, err := r.HistoryOf(owner)
	if err != nil || len(hist) == 0 || hist[len(hist)-1] != v {
		hist = append(hist, v)
	}
	if err := os.MkdirAll(filepath.Dir(activePath), 0o755); err != nil {
		return fmt.Errorf("registry: %w", r.relative(err))
	}
	if err := atomicfile.Write(historyPath, []byte(strings.Join(hist, "\n")+"\n")); err != nil {
		return fmt.Errorf("registry: moving the pointer of %s: %w", owner, r.relative(err))
	}
	if err := atomicfile.Write(activePath, []byte(v+"\n")); err != nil {
		return fmt.Errorf("registry: moving the pointer of %s: %w", owner, r.relative(err))
	}
	return nil
}

// History returns the activation history of the embedded model (see HistoryOf).
func (r *Registry) History() ([]string, error) { return r.HistoryOf(r.DefaultName()) }

// HistoryOf returns the versions of model name that were activated, oldest first (a version activated twice is
// listed twice). A model that never recorded one returns nil. A model without its own history yet takes its
// versions from the history at the top of the folder, where a registry from before named models kept them all.
func (r *Registry) HistoryOf(name string) ([]string, error) {
	_, historyPath, err := r.files(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(historyPath)
	top := name == r.DefaultName()
	if errors.Is(err, fs.ErrNotExist) && !top {
		historyPath = filepath.Join(r.dir, historyFile)
		b, err = os.ReadFile(historyPath)
		top = true
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", r.relative(err))
	}
	hist := parseHistory(b)
	if !top {
		return hist, nil
	}
	// The top history may hold other models' versions. A version that does not load stays in the embedded model's
	// history, which the top file is, so that a fallback still reports it.
	var out []string
	for _, v := range hist {
		if owner, ok := r.nameOf(v); ok && owner == name || !ok && name == r.DefaultName() {
			out = append(out, v)
		}
	}
	return out, nil
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

// LoadActive returns the network of the embedded model's name to serve at start (see LoadActiveOf).
func (r *Registry) LoadActive() (net *model.Network, fellBack string, err error) {
	return r.LoadActiveOf(r.DefaultName())
}

// LoadActiveOf returns the network of model name to serve: its active version, or when it fails to load, the most
// recently active version of that model before it that loads, or (for the embedded model's name) the embedded
// default. A version nobody activated (a job's model stored with activate=never, say) is never chosen. fellBack
// explains a fallback; it is empty when the active version (or, with none set, the embedded default) loaded. A
// name with no active version and no embedded default is ErrNoActive.
func (r *Registry) LoadActiveOf(name string) (net *model.Network, fellBack string, err error) {
	embedded := r.embedded
	if embedded != nil && name != embedded.Name {
		embedded = nil
	}
	active, aerr := r.ActiveOf(name)
	if aerr == nil && active == "" {
		if embedded != nil {
			return embedded.Clone(), "", nil
		}
		return nil, "", fmt.Errorf("%w: %s", ErrNoActive, name)
	}
	if aerr == nil {
		net, err := r.Load(active)
		if err == nil {
			return net, "", nil
		}
		aerr = err
	}
	hist, herr := r.HistoryOf(name)
	for i := len(hist) - 1; i >= 0; i-- {
		if v := hist[i]; v != active {
			if net, err := r.Load(v); err == nil && net.Name == name {
				return net, fmt.Sprintf("the active version %q does not load (%v); serving %s, the most recent version active before it that loads", active, aerr, v), nil
			}
		}
	}
	if embedded != nil {
		why := "no version active before it loads"
		if herr != nil {
			why = fmt.Sprintf("the activation history does not read (%v)", herr)
		}
		return embedded.Clone(), fmt.Sprintf("the active version %q does not load (%v) and %s; serving the embedded default %s", active, aerr, why, embedded.Version), nil
	}
	return nil, "", fmt.Errorf("registry: no loadable version of %s: %w", name, aerr)
}
