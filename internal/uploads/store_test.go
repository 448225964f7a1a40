package uploads

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// importSmall imports a two-class set of tiny images.
func importSmall(t *testing.T, s *Store) Info {
	t.Helper()
	img := tinyPNG(t)
	info, err := s.Import(context.Background(), makeZip(t, []member{{name: "b/1.png", data: img},
		{name: "a/1.png", data: img}, {name: "a/2.png", data: img}}), ImportOptions{Name: "small"})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestLookups(t *testing.T) {
	s, dir := openStore(t, Limits{})
	info := importSmall(t, s)
	// Things in DATA_DIR that are not finished sets: the MNIST copy, an import a crash interrupted, a folder that
	// looks like a set but has no info.json.
	for _, d := range []string{"mnist", ".import-123", "ds-0123456789abcdef"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, ".import-123", infoName), []byte(`{"format":1,"id":"ds-1111111111111111"}`), 0o644)

	t.Run("List shows only finished sets", func(t *testing.T) {
		infos, err := s.List()
		if err != nil || len(infos) != 1 || infos[0].ID != info.ID {
			t.Errorf("got %+v, %v; want just %s", infos, err, info.ID)
		}
	})
	t.Run("Get returns what Import returned", func(t *testing.T) {
		got, err := s.Get(info.ID)
		if err != nil || !equalInfo(got, info) {
			t.Errorf("got %+v, %v; want %+v", got, err, info)
		}
		if !slices.Equal(got.Classes, []string{"a", "b"}) || !slices.Equal(got.Counts, []int{2, 1}) {
			t.Errorf("got classes %q counts %v; want [a b] [2 1]", got.Classes, got.Counts)
		}
	})
	for _, id := range []string{"", "mnist", "../mnist", "ds-0123456789abcdef", "ds-0123456789ABCDEF",
		"ds-0123456789abcdef/../" + info.ID, info.ID + "\x00", "./" + info.ID, info.ID + "/", "/etc/passwd"} {
		t.Run("the id "+id+" is not found", func(t *testing.T) {
			if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get: got %s (%v); want ErrNotFound", kindOf(err), err)
			}
			if _, err := s.Load(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Load: got %s (%v); want ErrNotFound", kindOf(err), err)
			}
			if err := s.Delete(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete: got %s (%v); want ErrNotFound", kindOf(err), err)
			}
		})
	}
	t.Run("the MNIST folder survives", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(dir, "mnist")); err != nil {
			t.Error(err)
		}
	})
	t.Run("Delete removes a set", func(t *testing.T) {
		if err := s.Delete(info.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(info.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("got %s (%v); want ErrNotFound", kindOf(err), err)
		}
		if infos, _ := s.List(); len(infos) != 0 {
			t.Errorf("got %d sets; want none", len(infos))
		}
	})
}

func TestLoadRefusesDamagedSets(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
	}{
		{"a truncated image file is refused", func(dir string) error {
			return os.Truncate(filepath.Join(dir, imagesName), 30)
		}},
		{"a missing label file is refused", func(dir string) error { return os.Remove(filepath.Join(dir, labelsName)) }},
		{"image files swapped for label files are refused", func(dir string) error {
			return os.Rename(filepath.Join(dir, labelsName), filepath.Join(dir, imagesName))
		}},
		{"an info.json that disagrees with the files is refused", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, infoName), []byte(`{"format":1,"id":"`+filepath.Base(dir)+
				`","classes":["a","b"],"counts":[5,1],"examples":6,"width":28,"height":28,"preprocess":"resize"}`),
				0o644)
		}},
		{"a corrupt info.json is refused", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, infoName), []byte(`{"format":1,`), 0o644)
		}},
		{"an info.json of another format is refused", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, infoName), []byte(`{"format":2}`), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t, Limits{})
			info := importSmall(t, s)
			if _, err := s.Load(info.ID); err != nil {
				t.Fatalf("before the damage: %v", err)
			}
			if err := tt.damage(filepath.Join(dir, info.ID)); err != nil {
				t.Fatal(err)
			}
			_, err := s.Load(info.ID)
			if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
				t.Errorf("got %s (%v); want an internal error", kindOf(err), err)
			}
			if _, err := s.List(); err != nil {
				t.Errorf("List: got %v; want no error", err)
			}
		})
	}
}

func TestOpenRemovesOnlyStaleImports(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".import-old", ".import-new", "mnist"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	old := mustParseTime(t, "2020-01-01T00:00:00Z")
	os.Chtimes(filepath.Join(dir, ".import-old"), old, old)
	if _, err := Open(dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{".import-old": false, ".import-new": true, "mnist": true} {
		if _, err := os.Stat(filepath.Join(dir, d)); (err == nil) != want {
			t.Errorf("%s: got exists=%v; want %v", d, err == nil, want)
		}
	}
}

func TestConcurrentImportsGetDistinctIDs(t *testing.T) {
	s, _ := openStore(t, Limits{})
	const n = 4
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { ids <- importSmall(t, s).ID })
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	infos, err := s.List()
	if err != nil || len(infos) != n || len(seen) != n {
		t.Errorf("got %d sets listed (%v) and %d distinct ids; want %d", len(infos), err, len(seen), n)
	}
}
