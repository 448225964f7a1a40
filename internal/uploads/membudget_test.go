package uploads

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// An archive whose four directory entries point at one 40-megapixel JPEG is refused without decoding the
// image four times.
func TestImportRefusesEntriesThatShareData(t *testing.T) {
	s, err := Open(t.TempDir(), Limits{MaxPixels: 40_000_000, Memory: membudget.New(2 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	zipped := uploadtest.SharedDataZip(uploadtest.ProgressiveJPEG(64, 64, 3), "0/a.jpg", "0/b.jpg", "1/a.jpg", "1/b.jpg")
	_, err = s.Import(context.Background(), zipped, ImportOptions{})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v; want ErrInvalid for entries sharing data", err)
	}
}

// An image that could never fit the memory budget is refused from its header, and the budget is never exceeded.
func TestImportRefusesAnImageBeyondTheMemoryBudget(t *testing.T) {
	mem := membudget.New(256 << 20)
	s, err := Open(t.TempDir(), Limits{MaxPixels: 40_000_000, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	big := uploadtest.ProgressiveJPEG(6324, 6324, 4)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"0/a.jpg", "1/a.jpg"} {
		w, _ := zw.Create(name)
		w.Write(big)
	}
	zw.Close()
	_, err = s.Import(context.Background(), buf.Bytes(), ImportOptions{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v; want ErrTooLarge", err)
	}
	if mem.Peak() != 0 {
		t.Fatalf("budget peak %d; want nothing reserved", mem.Peak())
	}
}

// The pixels decoded by one import are capped, so many small entries of large images cannot take an hour; the cap
// is checked on the images' headers, so an archive over it is refused before any image is decoded (none holds
// memory for its pixels).
func TestImportCapsTheDecodedPixels(t *testing.T) {
	mem := membudget.New(2 << 30)
	s, err := Open(t.TempDir(), Limits{MaxDecodedPixels: 3 * 1000 * 1000, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	img := uploadtest.ProgressiveJPEG(1000, 1000, 1)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"0/a.jpg", "0/b.jpg", "1/a.jpg", "1/b.jpg"} {
		w, _ := zw.Create(name)
		w.Write(img)
	}
	zw.Close()
	if _, err := s.Import(context.Background(), buf.Bytes(), ImportOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v; want ErrTooLarge for 4 megapixels over a limit of 3", err)
	}
	if mem.Peak() != 0 {
		t.Fatalf("budget peak %d; want nothing reserved, no image decoded", mem.Peak())
	}
}

// A gzipped IDX of 8,192 images of 256x256 (512 MiB of pixels in a few hundred KB) is refused before it is inflated
// when its pixels cannot fit the budget.
func TestImportIDXReservesItsPixels(t *testing.T) {
	mem := membudget.New(450 << 20)
	s, err := Open(t.TempDir(), Limits{Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	images := binary.BigEndian.AppendUint32(nil, 0x0803)
	for _, d := range []uint32{8192, 256, 256} {
		images = binary.BigEndian.AppendUint32(images, d)
	}
	labels := binary.BigEndian.AppendUint32(nil, 0x0801)
	labels = binary.BigEndian.AppendUint32(labels, 8192)
	_, err = s.ImportIDX(context.Background(), images, labels, ImportOptions{Width: 28, Height: 28})
	if !errors.Is(err, ErrTooLarge) || mem.Peak() != 0 {
		t.Fatalf("got %v, budget peak %d; want ErrTooLarge with nothing reserved", err, mem.Peak())
	}
}
