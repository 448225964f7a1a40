package inference

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// Errors returned by Models.Acquire.
var (
	// ErrUnknownModel means no model of that name, or no such version of it, can be served; its message lists the
	// names there are.
	ErrUnknownModel = errors.New("no such model")
	// ErrBusy means every loaded model is answering requests, so none can make room for another; retry later.
	ErrBusy = errors.New("every loaded model is in use")
)

// DefaultMaxLoaded is how many models stay loaded at most when Models is given 0; the server's MAX_LOADED_MODELS
// defaults to it.
const DefaultMaxLoaded = 4

// Source is where Models finds the networks it loads (the registry).
type Source interface {
	// ActiveOf returns the active version of model name, "" when it has none.
	ActiveOf(name string) (string, error)
	// Load reads one version.
	Load(version string) (*model.Network, error)
	// Names lists the model names that have a version.
	Names() ([]string, error)
}

// Models is a cache with a budget of the networks served besides the engine's default one: any version of any model
// of the Source is loaded on first use, at most Max networks are loaded (the default one counts), and making room
// evicts the least recently used one that no request holds. A request holds a network from Acquire to its release,
// so an eviction never takes a network from under a request in flight; when every loaded network is held, Acquire
// answers ErrBusy rather than going over the budget. The default model (the engine's) is never evicted.
type Models struct {
	engine *Engine
	src    Source
	max    int

	mu     sync.Mutex
	loaded map[string]*loaded // by version (versions are unique across models)
	clock  uint64
}

type loaded struct {
	net  *model.Network
	refs int
	used uint64
}

// NewModels returns the cache in front of engine (whose model is the default one) and src; max 0 means
// DefaultMaxLoaded, and 1 serves the default model alone.
func NewModels(engine *Engine, src Source, max int) *Models {
	if max <= 0 {
		max = DefaultMaxLoaded
	}
	return &Models{engine: engine, src: src, max: max, loaded: map[string]*loaded{}}
}

// Max returns how many networks stay loaded at most.
func (m *Models) Max() int { return m.max }

// Loaded returns the versions loaded besides the default model, most recently used first.
func (m *Models) Loaded() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.loaded))
	for v := range m.loaded {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(m.loaded[b].used, m.loaded[a].used) })
	return out
}

// Acquire returns the network of model name at version (its active version when version is ""; the default
// model when name is ""), loading it if needed, and a release the caller must call once its request is answered.
func (m *Models) Acquire(name, version string) (*model.Network, func(), error) {
	def := m.engine.Model()
	if name == "" && def != nil {
		name = def.Name
	}
	if def != nil && name == def.Name && (version == "" || version == def.Version) {
		return def, func() {}, nil
	}
	if version == "" {
		v, err := m.src.ActiveOf(name)
		if err != nil || v == "" {
			return nil, nil, m.unknown(name, "")
		}
		version = v
	}
	m.mu.Lock()
	if l := m.loaded[version]; l != nil {
		if l.net.Name != name {
			m.mu.Unlock()
			return nil, nil, m.unknown(name, version)
		}
		return m.hold(l)
	}
	m.mu.Unlock()
	net, err := m.src.Load(version)
	if err != nil || net.Name != name {
		return nil, nil, m.unknown(name, version)
	}
	m.mu.Lock()
	if l := m.loaded[version]; l != nil { // loaded by another request meanwhile
		return m.hold(l)
	}
	for len(m.loaded) >= m.max-1 {
		var victim string
		for v, l := range m.loaded {
			if l.refs == 0 && (victim == "" || l.used < m.loaded[victim].used) {
				victim = v
			}
		}
		if victim == "" {
			m.mu.Unlock()
			return nil, nil, fmt.Errorf("%w: %d models loaded (MAX_LOADED_MODELS), all answering requests", ErrBusy, m.max)
		}
		delete(m.loaded, victim)
	}
	l := &loaded{net: net}
	m.loaded[version] = l
	return m.hold(l)
}

// hold takes a reference on l; the caller holds mu, which hold releases.
func (m *Models) hold(l *loaded) (*model.Network, func(), error) {
	m.clock++
	l.refs++
	l.used = m.clock
	m.mu.Unlock()
	var once sync.Once
	return l.net, func() {
		once.Do(func() {
			m.mu.Lock()
			l.refs--
			m.mu.Unlock()
		})
	}, nil
}

// unknown is the ErrUnknownModel of name (and version), listing the names there are.
func (m *Models) unknown(name, version string) error {
	names, _ := m.src.Names()
	what := fmt.Sprintf("model %q", truncate(name))
	if version != "" {
		what = fmt.Sprintf("version %q of model %q", truncate(version), truncate(name))
	}
	return fmt.Errorf("%w: %s is not served; the models are %s", ErrUnknownModel, what, strings.Join(names, ", "))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
