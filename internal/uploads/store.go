package uploads

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/randid"
)

// Info describes a stored data set.
type Info struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Classes  []string `json:"classes"`  // the labels; an example's label is an index into it
	Counts   []int    `json:"counts"`   // examples per class, in the order of Classes
	Examples int      `json:"examples"` // the sum of Counts
	// Width, Height and Preprocess are how the examples were prepared, and how a model trained on them must prepare
	// the images it is asked about.
	Width      int                 `json:"width"`
	Height     int                 `json:"height"`
	Preprocess model.Preprocessing `json:"preprocess"`
	// Channels is 3 when the examples are in colour, 1 when gray. Sets stored before colour have none, which is 1.
	Channels int       `json:"channels"`
	Source   string    `json:"source"` // the upload's format: "zip", "tar.gz", "tar" or "idx"
	Created  time.Time `json:"created"`
}

// Input is the input a model trained on the set expects.
func (i Info) Input() model.Input {
	in := model.Input{Width: i.Width, Height: i.Height, Preprocess: i.Preprocess}
	if i.Channels == 3 {
		in.Channels = 3
	}
	return in
}

// infoFile is info.json: Info and the version of the folder's layout.
type infoFile struct {
	Format int `json:"format"`
	Info
}

const (
	formatVersion = 1
	infoName      = "info.json"
	imagesName    = "images-idx3-ubyte.gz"
	labelsName    = "labels-idx1-ubyte.gz"
	// Work in progress lives in hidden folders with these prefixes, which List never shows.
	importPrefix = ".import-"
	deletePrefix = ".delete-"
	// staleAge is how old an unfinished import must be before Open removes it. Replicas share the folder, so an
	// import in progress elsewhere must not be taken for the leftovers of a crash.
	staleAge = 24 * time.Hour
)

// idPattern is what every id looks like. A lookup checks it before the id goes near a path.
var idPattern = regexp.MustCompile(`^ds-[0-9a-f]{16}$`)

// Store is the folder of data sets. It is safe for concurrent use, by goroutines and by processes sharing the folder.
type Store struct {
	dir string
	lim Limits
}

// Open returns the store in dir, creating the folder if need be, with the given limits on imports (zero fields mean
// the defaults). It removes imports that a crash left unfinished more than a day ago.
func Open(dir string, lim Limits) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	s := &Store{dir: dir, lim: lim.withDefaults()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), importPrefix) && !strings.HasPrefix(e.Name(), deletePrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAge {
			os.RemoveAll(filepath.Join(dir, e.Name())) // best effort; it is invisible either way
		}
	}
	return s, nil
}

// Limits returns the limits in force, defaults filled in; the HTTP layer may use MaxArchiveBytes as a body limit.
func (s *Store) Limits() Limits { return s.lim }

// List returns every stored set, oldest first. A folder whose info.json cannot be read is left out rather than
// failing the whole list; Get and Load on it report why.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	infos := []Info{}
	for _, e := range entries {
		if !e.IsDir() || !idPattern.MatchString(e.Name()) {
			continue
		}
		if info, err := s.Get(e.Name()); err == nil {
			infos = append(infos, info)
		}
	}
	slices.SortFunc(infos, func(a, b Info) int { return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID)) })
	return infos, nil
}

// Get returns the description of set id. An id that does not have the form of ids, or names no set, is ErrNotFound.
func (s *Store) Get(id string) (Info, error) {
	if !idPattern.MatchString(id) {
		return Info{}, &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("no data set %q", id)}
	}
	data, err := os.ReadFile(filepath.Join(s.dir, id, infoName))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("no data set %q", id)}
	}
	if err != nil {
		return Info{}, fmt.Errorf("uploads: %w", err)
	}
	var f infoFile
	if err := json.Unmarshal(data, &f); err != nil {
		return Info{}, fmt.Errorf("uploads: data set %s: %s: %w", id, infoName, err)
	}
	if f.Channels == 0 {
		f.Channels = 1
	}
	if err := f.check(id); err != nil {
		return Info{}, fmt.Errorf("uploads: data set %s: %s: %w", id, infoName, err)
	}
	return f.Info, nil
}

// check validates what Load relies on.
func (f *infoFile) check(id string) error {
	sum := 0
	for _, c := range f.Counts {
		sum += c
	}
	switch {
	case f.Format != formatVersion:
		return fmt.Errorf("format %d, want %d", f.Format, formatVersion)
	case f.ID != id:
		return fmt.Errorf("id %q in the folder of %q", f.ID, id)
	case len(f.Classes) < 2 || len(f.Classes) > maxClasses || len(f.Counts) != len(f.Classes):
		return fmt.Errorf("%d classes and %d counts", len(f.Classes), len(f.Counts))
	case sum != f.Examples || f.Examples <= 0:
		return fmt.Errorf("%d examples, but the counts add up to %d", f.Examples, sum)
	case f.Width < MinSide || f.Width > MaxSide || f.Height < MinSide || f.Height > MaxSide:
		return fmt.Errorf("image size %dx%d", f.Width, f.Height)
	case f.Channels != 1 && (f.Channels != 3 || f.Preprocess != model.PreprocessResize):
		return fmt.Errorf("%d channels with the %s preprocessing", f.Channels, f.Preprocess)
	}
	return nil
}

// Load reads set id into memory. The files are checked as any IDX upload is (dataset.ReadIDX, dataset.FromIDX), and
// against info.json. The set's Name is the id.
func (s *Store) Load(id string) (*dataset.Set, error) {
	info, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, id)
	images, err := dataset.ReadIDXFile(filepath.Join(dir, imagesName), int64(info.Examples)*int64(info.Input().Size()))
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	labels, err := dataset.ReadIDXFile(filepath.Join(dir, labelsName), int64(info.Examples))
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	set, err := dataset.FromIDX(images, labels)
	if err != nil {
		return nil, fmt.Errorf("uploads: data set %s: %w", id, err)
	}
	// A colour example is stored as its three planes stacked, an image three times as tall.
	if set.Len() != info.Examples || set.Rows != info.Height*info.Channels || set.Cols != info.Width ||
		len(set.Classes) > len(info.Classes) {
		return nil, fmt.Errorf("uploads: data set %s: the files hold %d examples of %dx%d in %d classes, but %s "+
			"says %d of %dx%d in %d", id, set.Len(), set.Cols, set.Rows, len(set.Classes), infoName, info.Examples,
			info.Width, info.Height, len(info.Classes))
	}
	set.Classes, set.Name = info.Classes, info.ID
	set.Rows, set.Channels = info.Height, info.Channels
	return set, set.Validate()
}

// Delete removes set id. It disappears from List at once (its folder is renamed first), even if removing the files
// takes a while or is interrupted.
func (s *Store) Delete(id string) error {
	if _, err := s.Get(id); err != nil && errors.Is(err, ErrNotFound) {
		return err
	}
	tmp := filepath.Join(s.dir, deletePrefix+id+"-"+randid.Hex(4))
	if err := os.Rename(filepath.Join(s.dir, id), tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("no data set %q", id)}
		}
		return fmt.Errorf("uploads: %w", err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("uploads: %w", err)
	}
	return nil
}

// save writes set into a hidden folder and renames it into place under a new id, so the set appears whole or not at
// all.
func (s *Store) save(set *dataset.Set, info Info) (Info, error) {
	tmp, err := os.MkdirTemp(s.dir, importPrefix)
	if err != nil {
		return Info{}, fmt.Errorf("uploads: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing is left to remove once the rename succeeded
	if err := writeFile(filepath.Join(tmp, imagesName), func(w *bufio.Writer) error {
		return dataset.WriteGzipIDX(w, []int{set.Len(), set.Rows * set.ChannelCount(), set.Cols}, set.X)
	}); err != nil {
		return Info{}, err
	}
	if err := writeFile(filepath.Join(tmp, labelsName), func(w *bufio.Writer) error {
		return dataset.WriteGzipIDX(w, []int{set.Len()}, set.Y)
	}); err != nil {
		return Info{}, err
	}
	for attempt := 0; ; attempt++ {
		info.ID = "ds-" + randid.Hex(8)
		final := filepath.Join(s.dir, info.ID)
		if _, err := os.Lstat(final); err == nil && attempt < 3 {
			continue // 2^64 ids make this all but impossible, but a rename onto an empty folder would replace it
		}
		if err := writeFile(filepath.Join(tmp, infoName), func(w *bufio.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(infoFile{Format: formatVersion, Info: info})
		}); err != nil {
			return Info{}, err
		}
		if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
			return Info{}, fmt.Errorf("uploads: %w", err)
		}
		if err := os.Rename(tmp, final); err != nil {
			return Info{}, fmt.Errorf("uploads: %w", err)
		}
		atomicfile.SyncDir(s.dir)
		return info, nil
	}
}

// writeFile writes one file of a set being saved, naming it in the error.
func writeFile(path string, write func(*bufio.Writer) error) error {
	if err := atomicfile.WriteFunc(path, write); err != nil {
		return fmt.Errorf("uploads: writing %s: %w", filepath.Base(path), err)
	}
	return nil
}
