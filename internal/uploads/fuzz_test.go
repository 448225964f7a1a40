package uploads

import (
	"archive/tar"
	"context"
	"errors"
	"testing"
)

// FuzzImport feeds arbitrary bytes to Import: it must never panic, must refuse with ErrInvalid or ErrTooLarge, and
// a set it accepts must load. The seeds are small archives made in memory, of every accepted format.
func FuzzImport(f *testing.F) {
	img := tinyPNG(f)
	valid := []member{{name: "cat/1.png", data: img}, {name: "dog/1.png", data: img}}
	f.Add(makeZip(f, valid))
	f.Add(makeTar(f, valid, true))
	f.Add(makeTar(f, valid, false))
	f.Add(makeZip(f, append(valid, member{name: "../x.png", data: img})))
	f.Add(makeTar(f, append(valid, member{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "a/b", Linkname: "/"}}),
		true))
	f.Add([]byte("PK\x05\x06"))
	f.Add([]byte{0x1f, 0x8b})
	s, err := Open(f.TempDir(), Limits{MaxFiles: 16, MaxUncompressedBytes: 1 << 20, MaxFileBytes: 64 << 10,
		MaxPixels: 1 << 12, MaxClasses: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := s.Import(context.Background(), data, ImportOptions{Width: 8, Height: 8})
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got an untyped error %v; want ErrInvalid or ErrTooLarge", err)
			}
			return
		}
		set, err := s.Load(info.ID)
		if err != nil {
			t.Fatalf("Load of an imported set: %v", err)
		}
		if set.Len() != info.Examples || len(set.Classes) < 2 {
			t.Fatalf("got %d examples in %d classes; want %d in at least 2", set.Len(), len(set.Classes), info.Examples)
		}
		s.Delete(info.ID)
	})
}
