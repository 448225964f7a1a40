// Models by name: each model's active pointer and activation history, the pointer a replica follows, and the
// fallback at start to a version that was active before.

package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// DefaultName is the name of the embedded model, "" when the registry has none.
func (r *Registry) DefaultName() string {
	if r.embedded == nil {
		return ""
	}
	return r.embedded.Name
}

// files returns the keys of a model name's pointer and history objects.
func (r *Registry) files(name string) (active, history string, err error) {
	if !validVersion.MatchString(name) {
		return "", "", fmt.Errorf("%w: model name %q", ErrInvalid, name)
	}
	if name == r.DefaultName() {
		return activeFile, historyFile, nil
	}
	return modelsDir + "/" + name + "/" + activeFile, modelsDir + "/" + name + "/" + historyFile, nil
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
	if r.remote != nil {
		return r.remote.nameOf(r, version)
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

// readPointer reads a pointer object; found is false when there is none. From a bucket it is the copy the watch
// keeps fresh (see Refresh), so that serving a request never waits for the bucket.
func (r *Registry) readPointer(key string) (version string, found bool, err error) {
	if r.remote != nil {
		p, err := r.remote.pointer(r, key)
		return p.version, p.found, err
	}
	version, found, _, err = r.fetchPointer(key, "")
	return version, found, err
}

// fetchPointer reads a pointer object from the store, with its ETag (see Store.Get for ifNoneMatch).
func (r *Registry) fetchPointer(key, ifNoneMatch string) (version string, found bool, etag string, err error) {
	ctx, cancel := r.opCtx()
	defer cancel()
	b, etag, err := r.store.Get(ctx, key, ifNoneMatch)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, "", nil
	}
	if err != nil {
		return "", false, etag, fmt.Errorf("registry: %w", r.unavailable(r.relative(err)))
	}
	v := string(bytes.TrimSpace(b))
	if !validVersion.MatchString(v) {
		return "", false, etag, fmt.Errorf("registry: %s names %q, not a version", path.Base(key), v)
	}
	return v, true, etag, nil
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
	v, found, err := r.readPointer(activePath)
	if err != nil {
		return "", err
	}
	top := name == r.DefaultName()
	if !found && !top {
		// A registry from before named models kept one pointer at the top; it is this model's while it names one
		// of its versions.
		if v, found, err = r.readPointer(activeFile); err != nil || !found {
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
	// The pointer's ETag is read before anything is decided, so that a change by another replica from here on
	// makes the write below fail rather than silently undo it.
	_, pfound, petag, err := r.fetchPointer(activePath, "")
	switch {
	case err != nil && petag != "":
		// The pointer reads but names no version (damage): this activation repairs it, still conditionally.
	case err != nil:
		return nil, err
	case !pfound:
		petag = IfAbsent
	}
	hist, herr := r.HistoryOf(net.Name)
	if herr == nil && len(hist) == 0 {
		// A registry from before the history was kept: the version active until now was chosen by someone too.
		if prev, err := r.ActiveOf(net.Name); err == nil && prev != "" {
			hist = []string{prev}
		}
	}
	ctx, cancel := r.opCtx()
	defer cancel()
	etag, err := r.store.Put(ctx, activePath, []byte(version+"\n"), petag)
	if errors.Is(err, ErrPrecondition) {
		if r.remote != nil { // follow the winner from now on, without waiting for the next poll
			if v, found, etag, err := r.fetchPointer(activePath, ""); err == nil {
				r.remote.setPointer(activePath, pointer{version: v, found: found, etag: etag})
			}
		}
		return nil, fmt.Errorf("%w: %s was activated by another replica meanwhile; %s is not active", ErrConflict, net.Name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: writing the active pointer: %w", r.unavailable(r.relative(err)))
	}
	if r.remote != nil {
		r.remote.setPointer(activePath, pointer{version: version, found: true, etag: etag})
	}
	// The pointer is written first: a crash between the two writes leaves the history one activation short, so a
	// fallback can only miss a version, never pick one that was not active.
	if herr == nil {
		if err := r.appendHistory(net.Name, historyPath, hist, version); err != nil {
			return nil, err
		}
	}
	return net, nil
}

// appendHistory records an activation in a model's history object. The write is conditional on the history read,
// and retried on a conflict (another replica's activation that landed in between): an append cannot be lost.
func (r *Registry) appendHistory(name, key string, hist []string, version string) error {
	ctx, cancel := r.opCtx()
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, etag, err := r.store.Get(ctx, key, "")
		if errors.Is(err, fs.ErrNotExist) {
			etag = IfAbsent
		} else if err != nil {
			return fmt.Errorf("registry: recording the activation: %w", r.unavailable(r.relative(err)))
		}
		if attempt > 0 {
			if hist, err = r.HistoryOf(name); err != nil {
				return err
			}
		}
		next := append(slices.Clip(hist), version)
		if len(next) > maxHistory {
			next = next[len(next)-maxHistory:]
		}
		_, err = r.store.Put(ctx, key, []byte(strings.Join(next, "\n")+"\n"), etag)
		if errors.Is(err, ErrPrecondition) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("registry: recording the activation: %w", r.unavailable(r.relative(err)))
		}
		return nil
	}
}

// migrateTop gives the model that the top pointer of an older registry names its own pointer and history, before
// the embedded model's activation overwrites the top pointer. It does nothing when the top pointer names a version
// of the embedded model, names none, or its model already has its own pointer.
func (r *Registry) migrateTop() error {
	v, found, err := r.readPointer(activeFile)
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
	if _, found, _, err := r.fetchPointer(activePath, ""); err != nil || found {
		return nil
	}
	hist, err := r.HistoryOf(owner)
	if err != nil || len(hist) == 0 || hist[len(hist)-1] != v {
		hist = append(hist, v)
	}
	ctx, cancel := r.opCtx()
	defer cancel()
	if _, err := r.store.Put(ctx, historyPath, []byte(strings.Join(hist, "\n")+"\n"), Always); err != nil {
		return fmt.Errorf("registry: moving the pointer of %s: %w", owner, r.unavailable(r.relative(err)))
	}
	if _, err := r.store.Put(ctx, activePath, []byte(v+"\n"), IfAbsent); err != nil && !errors.Is(err, ErrPrecondition) {
		return fmt.Errorf("registry: moving the pointer of %s: %w", owner, r.unavailable(r.relative(err)))
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
	ctx, cancel := r.opCtx()
	defer cancel()
	b, _, err := r.store.Get(ctx, historyPath, "")
	top := name == r.DefaultName()
	if errors.Is(err, fs.ErrNotExist) && !top {
		b, _, err = r.store.Get(ctx, historyFile, "")
		top = true
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", r.unavailable(r.relative(err)))
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
	var hist []string
	herr := aerr
	if !errors.Is(aerr, ErrUnavailable) { // the history is in the same store: it would not answer either
		hist, herr = r.HistoryOf(name)
	}
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
