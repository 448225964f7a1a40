package uploads

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// bombSize is what the test bombs expand to: small enough to build quickly, far over the limits they are tested with.
const bombSize = 32 << 20

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

var zeros struct {
	once     sync.Once
	deflated []byte
	crc      uint32
}

// deflatedZeros returns bombSize zero bytes, deflated (about 32 KB), and their CRC-32, computed once: deflating
// takes a while under the race detector.
func deflatedZeros(t testing.TB) ([]byte, uint32) {
	zeros.once.Do(func() {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		crc := crc32.NewIEEE()
		io.CopyN(io.MultiWriter(fw, crc), zeroReader{}, bombSize)
		fw.Close()
		zeros.deflated, zeros.crc = buf.Bytes(), crc.Sum32()
	})
	return zeros.deflated, zeros.crc
}

// zipBomb returns a zip of one deflated entry of bombSize zeros whose directory declares the given size: the truth,
// or a lie.
func zipBomb(t testing.TB, declared uint64) []byte {
	comp, crc := deflatedZeros(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "cat/1.png", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(comp)), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp)
	zw.Close()
	return buf.Bytes()
}

// tarBomb returns a tar.gz with one member of bombSize zeros under the given name. It is three gzip members, which
// gzip readers read as one stream: the tar header, the zeros deflated once for all bombs, and the end of the tar.
func tarBomb(t testing.TB, name string) []byte {
	comp, crc := deflatedZeros(t)
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: bombSize}); err != nil {
		t.Fatal(err)
	}
	out := gzipped(t, hdr.Bytes())
	out = append(out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
	out = append(out, comp...)
	out = binary.LittleEndian.AppendUint32(out, crc)
	out = binary.LittleEndian.AppendUint32(out, bombSize)
	return append(out, gzipped(t, make([]byte, 1024))...)
}

func TestBombsAreRefusedCheaply(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		lim     Limits
		want    error
	}{
		{"a zip entry declaring more than the per-file limit is refused unread",
			zipBomb(t, bombSize), Limits{MaxFileBytes: 1 << 20}, ErrTooLarge},
		{"a zip declaring more than the total limit is refused unread",
			zipBomb(t, bombSize), Limits{MaxUncompressedBytes: 4 << 20}, ErrTooLarge},
		{"a zip entry lying about its size is refused after reading what it declared",
			zipBomb(t, 1000), Limits{}, ErrInvalid},
		{"a tar.gz member declaring more than the per-file limit is refused unread",
			tarBomb(t, "cat/1.png"), Limits{MaxFileBytes: 1 << 20}, ErrTooLarge},
		{"a tar.gz member within the per-file limit but expanding past the total limit is refused at the limit",
			tarBomb(t, "cat/1.png"), Limits{MaxFileBytes: 1 << 30, MaxUncompressedBytes: 4 << 20}, ErrTooLarge},
		{"a tar.gz of skipped members expanding past the total limit is refused at the limit",
			tarBomb(t, "__MACOSX/cat/._1.png"), Limits{MaxUncompressedBytes: 4 << 20}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t, tt.lim)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := s.Import(context.Background(), tt.archive, ImportOptions{})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %s (%v); want %v", kindOf(err), err, tt.want)
			}
			t.Logf("%v after %v, %d KiB allocated", err, elapsed.Round(time.Millisecond),
				(after.TotalAlloc-before.TotalAlloc)>>10)
			// Cheap is measured in bytes, not seconds, which a loaded machine stretches. Reading up to a 4 MiB limit
			// costs twice that as the buffer grows, and more under the race detector.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
				t.Errorf("got %d MiB allocated; want at most 24 MiB for a %d MiB bomb", alloc>>20, bombSize>>20)
			}
			assertEmpty(t, s, dir)
		})
	}
}

// assertEmpty checks that a refused import left nothing behind.
func assertEmpty(t *testing.T, s *Store, dir string) {
	t.Helper()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("got %d entries in the store's folder (%s...); want none", len(entries), entries[0].Name())
	}
	if infos, err := s.List(); err != nil || len(infos) != 0 {
		t.Errorf("got List() = %v, %v; want no sets", infos, err)
	}
}

func TestImportRefusesHostileArchives(t *testing.T) {
	img := tinyPNG(t)
	two := func(ms ...member) []member { // two valid classes, plus ms
		return append([]member{{name: "cat/1.png", data: img}, {name: "dog/1.png", data: img}}, ms...)
	}
	many := func(n int) []member {
		var ms []member
		for i := range n {
			ms = append(ms, member{name: strings.Repeat("x", i%7+1) + "/" + strings.Repeat("y", i+1) + ".png", data: img})
		}
		return ms
	}
	tarEntry := func(h tar.Header) member { return member{hdr: &h} }
	zipped := makeZip(t, two())
	tgz := makeTar(t, two(), true)
	nested := makeZip(t, two(member{name: "dog/more.zip", data: zipped}))
	badPNG := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0x42}, 100)...)
	encrypted := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, n := range []string{"cat/1.png", "dog/1.png"} {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store, Flags: 0x1})
			w.Write(img)
		}
		zw.Close()
		return buf.Bytes()
	}()
	tests := []struct {
		name    string
		archive []byte
		lim     Limits
		want    error
		detail  string // a part of the message
	}{
		{"an empty upload is invalid", nil, Limits{}, ErrInvalid, "empty"},
		{"a blob of text is not an archive", []byte("hello, world\n"), Limits{}, ErrInvalid, "not a zip or tar.gz"},
		{"a lone image is not an archive", img, Limits{}, ErrInvalid, "not a zip or tar.gz"},
		{"an IDX file is pointed to the IDX upload",
			idxBytes(t, []int{1, 4, 4}, make([]byte, 16), false), Limits{}, ErrInvalid, "IDX"},
		{"a zip without entries holds no images", makeZip(t, nil), Limits{}, ErrInvalid, "no images"},
		{"a tar.gz without entries holds no images", makeTar(t, nil, true), Limits{}, ErrInvalid, "no images"},
		{"a zip of only skipped files holds no images",
			makeZip(t, []member{{name: "__MACOSX/._a", data: []byte("x")}, {name: "a/.DS_Store"}}), Limits{},
			ErrInvalid, "no images"},
		{"a truncated zip is invalid", zipped[:len(zipped)/2], Limits{}, ErrInvalid, "zip"},
		{"a truncated tar.gz is invalid", tgz[:len(tgz)*2/3], Limits{}, ErrInvalid, "truncated"},
		{"gzip of something else than a tar is invalid", gzipped(t, []byte("hello")), Limits{}, ErrInvalid, "tar"},
		{"an archive of one class needs a second",
			makeZip(t, []member{{name: "cat/1.png", data: img}, {name: "cat/2.png", data: img}}), Limits{},
			ErrInvalid, "at least two"},
		{"an image outside a class folder is refused", makeZip(t, two(member{name: "1.png", data: img})),
			Limits{}, ErrInvalid, `"1.png": is not inside a class folder`},
		{"an undecodable image is refused by name", makeZip(t, two(member{name: "dog/2.png", data: badPNG})),
			Limits{}, ErrInvalid, `"dog/2.png"`},
		{"a truncated image is refused by name", makeTar(t, two(member{name: "dog/2.png", data: img[:40]}), true),
			Limits{}, ErrInvalid, `"dog/2.png"`},
		{"a text file is not an image", makeZip(t, two(member{name: "cat/notes.txt", data: []byte("meow")})),
			Limits{}, ErrInvalid, `"cat/notes.txt": is not an image`},
		{"a nested archive is not extracted", nested, Limits{}, ErrInvalid, `"dog/more.zip": is an archive`},
		{"a name used twice is refused", makeZip(t, two(member{name: "cat//1.png", data: img})), Limits{},
			ErrInvalid, "twice"},
		{"a class name with a control character is refused",
			makeZip(t, two(member{name: "b\x01d/1.png", data: img})), Limits{}, ErrInvalid, "unprintable"},
		{"a class name of invalid UTF-8 is refused",
			makeZip(t, two(member{name: "b\xffd/1.png", data: img})), Limits{}, ErrInvalid, "UTF-8"},
		{"more classes than the limit are refused", makeZip(t, two(member{name: "eel/1.png", data: img})),
			Limits{MaxClasses: 2}, ErrInvalid, "more than 2 classes"},
		{"an upload over the size limit is too large", zipped, Limits{MaxArchiveBytes: 100}, ErrTooLarge, "100"},
		{"a zip of more entries than the limit is too large", makeZip(t, many(30)), Limits{MaxFiles: 10},
			ErrTooLarge, "more than 10 entries"},
		{"a tar.gz of more entries than the limit is too large", makeTar(t, many(30), true), Limits{MaxFiles: 10},
			ErrTooLarge, "more than 10 entries"},
		{"an image of more pixels than the limit is too large", zipped, Limits{MaxPixels: 32}, ErrTooLarge,
			"pixels"},
		{"a zip path climbing out with .. is refused", makeZip(t, two(member{name: "../x/1.png", data: img})),
			Limits{}, ErrInvalid, ".."},
		{"a zip path climbing out in the middle is refused",
			makeZip(t, two(member{name: "cat/../../1.png", data: img})), Limits{}, ErrInvalid, ".."},
		{"a tar path climbing out with .. is refused",
			makeTar(t, two(member{name: "../x/1.png", data: img}), true), Limits{}, ErrInvalid, ".."},
		{"an absolute zip path is refused", makeZip(t, two(member{name: "/abs/1.png", data: img})), Limits{},
			ErrInvalid, "absolute"},
		{"an absolute tar path is refused", makeTar(t, two(member{name: "/abs/1.png", data: img}), false),
			Limits{}, ErrInvalid, "absolute"},
		{"a backslash in a path is refused", makeZip(t, two(member{name: `a\b.png`, data: img})), Limits{},
			ErrInvalid, "backslash"},
		{"a drive letter is refused", makeZip(t, two(member{name: "C:/x/1.png", data: img})), Limits{},
			ErrInvalid, "drive"},
		{"a name over 255 bytes is refused",
			makeTar(t, two(member{name: "cat/" + strings.Repeat("a", 300) + ".png", data: img}), true), Limits{},
			ErrInvalid, "255"},
		{"a zip symlink is refused",
			makeZip(t, two(member{name: "cat/2.png", data: []byte("/etc/passwd"), mode: 0o120777})), Limits{},
			ErrInvalid, "symbolic link"},
		{"an encrypted zip entry is refused", encrypted, Limits{}, ErrInvalid, "encrypted"},
		{"a tar symlink is refused",
			makeTar(t, two(tarEntry(tar.Header{Typeflag: tar.TypeSymlink, Name: "cat/2.png", Linkname: "/etc/passwd"})),
				true), Limits{}, ErrInvalid, `"cat/2.png": is a symbolic link`},
		{"a tar hard link is refused",
			makeTar(t, two(tarEntry(tar.Header{Typeflag: tar.TypeLink, Name: "cat/2.png", Linkname: "dog/1.png"})),
				true), Limits{}, ErrInvalid, "hard link"},
		{"a tar device is refused",
			makeTar(t, two(tarEntry(tar.Header{Typeflag: tar.TypeChar, Name: "cat/null", Devmajor: 1, Devminor: 3})),
				true), Limits{}, ErrInvalid, "device"},
		{"a tar named pipe is refused",
			makeTar(t, two(tarEntry(tar.Header{Typeflag: tar.TypeFifo, Name: "cat/fifo"})), true), Limits{},
			ErrInvalid, "named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t, tt.lim)
			_, err := s.Import(context.Background(), tt.archive, ImportOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %s (%v); want %v", kindOf(err), err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(e.Detail(), tt.detail) {
				t.Errorf("got message %q; want it to contain %q", err, tt.detail)
			}
			assertEmpty(t, s, dir)
		})
	}
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

func TestImportRefusesBadOptions(t *testing.T) {
	archive := makeZip(t, []member{{name: "cat/1.png", data: tinyPNG(t)}, {name: "dog/1.png", data: tinyPNG(t)}})
	tests := []struct {
		name string
		opts ImportOptions
		want string
	}{
		{"an unknown preprocessing is refused", ImportOptions{Preprocess: "sepia"}, "unknown preprocessing"},
		{"a size over the maximum is refused", ImportOptions{Width: 1000, Height: 28}, "1000x28"},
		{"a size under the minimum is refused", ImportOptions{Width: 28, Height: 2}, "28x2"},
		{"a name with a newline is refused", ImportOptions{Name: "a\nb"}, "unprintable"},
	}
	s, dir := openStore(t, Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Import(context.Background(), archive, tt.opts)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %s (%v); want ErrInvalid mentioning %q", kindOf(err), err, tt.want)
			}
		})
	}
	t.Run("a cancelled import returns the context's error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Import(ctx, archive, ImportOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v; want context.Canceled", err)
		}
	})
	assertEmpty(t, s, dir)
}

func TestImportIDXRefusesBadFiles(t *testing.T) {
	labels := idxBytes(t, []int{4}, []byte{0, 1, 0, 1}, false)
	images := idxBytes(t, []int{4, 8, 8}, bytes.Repeat([]byte{0, 0, 255, 255}, 64), false)
	tests := []struct {
		name           string
		images, labels []byte
		opts           ImportOptions
		lim            Limits
		want           error
		detail         string
	}{
		{"more images than labels are refused", idxBytes(t, []int{5, 8, 8}, make([]byte, 320), false), labels,
			ImportOptions{}, Limits{}, ErrInvalid, "5 images but the label file 4 labels"},
		{"an image file of two dimensions is refused", idxBytes(t, []int{4, 64}, make([]byte, 256), false),
			labels, ImportOptions{}, Limits{}, ErrInvalid, "2 dimensions, want 3"},
		{"labels swapped with images are refused", labels, images, ImportOptions{}, Limits{}, ErrInvalid,
			"dimensions"},
		{"a file that is not IDX is refused", []byte("hello, world, hello"), labels, ImportOptions{}, Limits{},
			ErrInvalid, "not an IDX file"},
		{"a truncated image file is refused", images[:len(images)-10], labels, ImportOptions{}, Limits{},
			ErrInvalid, "image file"},
		{"an image file with trailing bytes is refused", append(bytes.Clone(images), 1, 2), labels,
			ImportOptions{}, Limits{}, ErrInvalid, "trailing"},
		{"labels of one class are refused", images, idxBytes(t, []int{4}, []byte{1, 1, 1, 1}, false),
			ImportOptions{}, Limits{}, ErrInvalid, "at least two classes"},
		{"a label over the class limit is refused", images, idxBytes(t, []int{4}, []byte{0, 1, 0, 200}, false),
			ImportOptions{}, Limits{}, ErrInvalid, "label 200"},
		{"too few class names are refused", images, labels, ImportOptions{Classes: []string{"cat"}}, Limits{},
			ErrInvalid, "1 class names"},
		{"a class name used twice is refused", images, labels, ImportOptions{Classes: []string{"cat", "cat"}},
			Limits{}, ErrInvalid, "twice"},
		{"a header announcing a billion images, with four labels, is refused unread",
			append([]byte{0, 0, 8, 3, 0x40, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}, make([]byte, 100)...),
			idxBytes(t, []int{4}, []byte{0, 1, 0, 1}, false), ImportOptions{}, Limits{}, ErrInvalid, "1073741824"},
		{"headers announcing a billion images and labels are too large, unread",
			append([]byte{0, 0, 8, 3, 0x40, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}, make([]byte, 100)...),
			append([]byte{0, 0, 8, 1, 0x40, 0, 0, 0}, 0, 1), ImportOptions{}, Limits{}, ErrTooLarge,
			"1073741824 images"},
		{"more images than the limit are too large", images, labels, ImportOptions{}, Limits{MaxFiles: 3},
			ErrTooLarge, "more than the limit of 3"},
		{"files over the upload limit are too large", images, labels, ImportOptions{}, Limits{MaxArchiveBytes: 100},
			ErrTooLarge, "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t, tt.lim)
			_, err := s.ImportIDX(context.Background(), tt.images, tt.labels, tt.opts)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("got %s (%v); want %v mentioning %q", kindOf(err), err, tt.want, tt.detail)
			}
			assertEmpty(t, s, dir)
		})
	}
}

// TestImportNamesTheFirstBadImage refuses an archive with two bad images, one early that takes a while to fail and
// one later that fails at once: the message names the early one every time, whichever worker failed first.
func TestImportNamesTheFirstBadImage(t *testing.T) {
	img := tinyPNG(t)
	noise := image.NewGray(image.Rect(0, 0, 1200, 1200))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.Uint32())
	}
	slow := uploadtest.EncodePNG(noise)
	slow = slow[:len(slow)*9/10] // cut: it decodes most of its rows, then fails
	fast := append([]byte("\\x89PNG\\r\\n\\x1a\\n"), bytes.Repeat([]byte{0x42}, 100)...)
	members := []member{{name: "cat/1.png", data: img}, {name: "dog/1.png", data: img}, {name: "cat/slow.png", data: slow}}
	for i := range 6 {
		members = append(members, member{name: fmt.Sprintf("dog/%d.png", i+2), data: img})
	}
	members = append(members, member{name: "dog/fast.png", data: fast})
	archive := makeZip(t, members)
	for range 5 {
		s, dir := openStore(t, Limits{})
		_, err := s.Import(context.Background(), archive, ImportOptions{})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cat/slow.png") {
			t.Fatalf("got %s (%v); want the first bad image, cat/slow.png, named", kindOf(err), err)
		}
		assertEmpty(t, s, dir)
	}
}
