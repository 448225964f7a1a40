package uploads_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"

	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// Example imports a zip of two class folders, as zipping a folder on a desktop makes it (with a wrapper folder and
// macOS's __MACOSX leftovers), and loads it for training.
func Example() {
	dir, err := os.MkdirTemp("", "uploads-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := uploads.Open(dir, uploads.Limits{})
	if err != nil {
		log.Fatal(err)
	}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, name := range []string{"pets/cat/1.png", "pets/cat/2.png", "pets/dog/1.png", "__MACOSX/pets/._cat"} {
		w, _ := zw.Create(name)
		img := image.NewGray(image.Rect(0, 0, 32, 32))
		for j := range img.Pix {
			img.Pix[j] = uint8(40 * i)
		}
		img.SetGray(3, 3, color.Gray{Y: 255})
		png.Encode(w, img)
	}
	zw.Close()

	info, err := store.Import(context.Background(), buf.Bytes(), uploads.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: classes %q, %v examples each, %dx%d %s\n", info.Name, info.Classes, info.Counts, info.Width,
		info.Height, info.Preprocess)

	set, err := store.Load(info.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(set.Len(), "examples of", set.Features(), "pixels")
	// Output:
	// pets: classes ["cat" "dog"], [2 1] examples each, 28x28 resize
	// 3 examples of 784 pixels
}
