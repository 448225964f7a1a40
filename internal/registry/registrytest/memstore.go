// Package registrytest is a test kit for the registry: MemStore, an object store in memory with the semantics of
// an S3 bucket that supports conditional writes (If-None-Match: *, If-Match: ETag), which a test can take down,
// count requests of, and stop at a write to interleave another replica's.
package registrytest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/registry"
)

// ErrDown is what every request answers while the store is down.
var ErrDown = errors.New("registrytest: the store is down")

// MemStore is a registry.Store in memory. The zero value is an empty store, up.
type MemStore struct {
	mu      sync.Mutex
	objects map[string]object
	down    bool
	gets    int
	// BeforePut, when set, runs at the start of every Put (outside the store's lock), so a test can make another
	// writer's request land between a replica's read and its write.
	BeforePut func(key string)
}

type object struct {
	data    []byte
	etag    string
	modTime time.Time
}

// SetDown makes every request fail with ErrDown (true) or answer again (false).
func (m *MemStore) SetDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// Gets returns how many Get requests the store has answered or refused.
func (m *MemStore) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

// Overwrite replaces an object's bytes behind the registry's back (a damaged disk, an operator's mistake).
func (m *MemStore) Overwrite(key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(key, data)
}

// Object returns an object's bytes, nil when it is missing.
func (m *MemStore) Object(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.objects[key].data)
}

func (m *MemStore) setLocked(key string, data []byte) string {
	if m.objects == nil {
		m.objects = map[string]object{}
	}
	sum := md5.Sum(data)
	o := object{data: slices.Clone(data), etag: hex.EncodeToString(sum[:]), modTime: time.Now()}
	m.objects[key] = o
	return o.etag
}

// Get implements registry.Store.
func (m *MemStore) Get(ctx context.Context, key, ifNoneMatch string) ([]byte, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.down {
		return nil, "", ErrDown
	}
	o, ok := m.objects[key]
	if !ok {
		return nil, "", fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if ifNoneMatch != "" && ifNoneMatch == o.etag {
		return nil, o.etag, registry.ErrNotModified
	}
	return slices.Clone(o.data), o.etag, nil
}

// Put implements registry.Store.
func (m *MemStore) Put(ctx context.Context, key string, data []byte, ifMatch string) (string, error) {
	if m.BeforePut != nil {
		m.BeforePut(key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return "", ErrDown
	}
	o, ok := m.objects[key]
	switch {
	case ifMatch == registry.Always:
	case ifMatch == registry.IfAbsent && ok, ifMatch != registry.IfAbsent && (!ok || o.etag != ifMatch):
		return "", fmt.Errorf("%s: %w", key, registry.ErrPrecondition)
	}
	return m.setLocked(key, data), nil
}

// List implements registry.Store.
func (m *MemStore) List(ctx context.Context, prefix string) ([]registry.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrDown
	}
	var out []registry.Object
	for k, o := range m.objects {
		if rest, ok := strings.CutPrefix(k, prefix); ok && !strings.Contains(rest, "/") {
			out = append(out, registry.Object{Key: k, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag})
		}
	}
	slices.SortFunc(out, func(a, b registry.Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements registry.Store.
func (m *MemStore) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrDown
	}
	delete(m.objects, key)
	return nil
}
