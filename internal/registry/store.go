// The storage seam: the registry keeps its objects (version files, pointers, histories) in a Store, a local folder
// (dirStore) or an object store (package s3store); the keys are the same slash-separated paths in both.

package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
)

// Errors a Store returns, which the registry tells apart.
var (
	// ErrPrecondition means a conditional write was refused: the object exists (a write only if absent) or its
	// ETag is no longer the one the writer read.
	ErrPrecondition = errors.New("the object changed since it was read")
	// ErrNotModified answers a Get whose ifNoneMatch is the object's ETag.
	ErrNotModified = errors.New("the object is unchanged")
)

// Conditions of Store.Put on the object's current state, besides an ETag.
const (
	IfAbsent = ""  // write only when no object has the key
	Always   = "*" // write whatever is there
)

// Store holds the registry's objects by key ("versions/v1.pcpt", "ACTIVE", "models/pets/HISTORY"). A missing
// object is fs.ErrNotExist. Every write is of a whole object, so a reader sees an object whole or not at all.
type Store interface {
	// Get returns an object and its ETag; with ifNoneMatch equal to that ETag, ErrNotModified (and no data).
	Get(ctx context.Context, key, ifNoneMatch string) (data []byte, etag string, err error)
	// Put writes an object when ifMatch holds (IfAbsent, Always, or the ETag the writer read), else
	// ErrPrecondition; it returns the new ETag.
	Put(ctx context.Context, key string, data []byte, ifMatch string) (etag string, err error)
	// List returns the objects whose keys start with prefix and have no further "/" after it.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
}

// Object describes a stored object in a listing.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag changes whenever the object does; a folder's listing leaves it empty (size and time tell a change).
	ETag string
}

// dirStore is a Store on a local folder, shared by replicas that mount it: a write goes to a temporary file that is
// renamed over the key's path, and an ETag is the content's SHA-256. Conditional writes hold within this process
// (mu); across processes sharing the folder the last rename wins, as there is no compare-and-swap on a rename.
type dirStore struct {
	dir string
	mu  sync.Mutex
}

func (d *dirStore) path(key string) string { return filepath.Join(d.dir, filepath.FromSlash(key)) }

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func (d *dirStore) Get(_ context.Context, key, ifNoneMatch string) ([]byte, string, error) {
	b, err := os.ReadFile(d.path(key))
	if err != nil {
		return nil, "", err
	}
	etag := etagOf(b)
	if ifNoneMatch != "" && ifNoneMatch == etag {
		return nil, etag, ErrNotModified
	}
	return b, etag, nil
}

func (d *dirStore) Put(_ context.Context, key string, data []byte, ifMatch string) (string, error) {
	p := d.path(key)
	d.mu.Lock()
	defer d.mu.Unlock()
	if ifMatch != Always {
		b, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if ifMatch != IfAbsent {
				return "", fmt.Errorf("%w: %s", ErrPrecondition, key)
			}
		case err != nil:
			return "", err
		case ifMatch == IfAbsent || etagOf(b) != ifMatch:
			return "", fmt.Errorf("%w: %s", ErrPrecondition, key)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := atomicfile.Write(p, data); err != nil {
		return "", err
	}
	return etagOf(data), nil
}

func (d *dirStore) List(_ context.Context, prefix string) ([]Object, error) {
	dir, base := filepath.Split(filepath.FromSlash(prefix))
	des, err := os.ReadDir(filepath.Join(d.dir, dir))
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), base) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, Object{Key: filepath.ToSlash(filepath.Join(dir, de.Name())), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

func (d *dirStore) Delete(_ context.Context, key string) error {
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
