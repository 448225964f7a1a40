package imageprep

import (
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

var update = flag.Bool("update", false, "rewrite the files in testdata/")

// seedFiles are the small images in testdata/: one per format, seeds for FuzzDecodePrepare and the material of the
// truncation tests. TestTestdata writes them with -update.
var seedFiles = []string{
	"digit.png", "canvas.png", "gray16.png", "digit.jpg", "digit.gif", "digit.bmp", "digit.tiff",
	"lossless.webp", "lossy.webp",
}

// TestTestdata checks that the seed images decode, and with -update makes them again: the first MNIST test digit in
// several formats, and two WebP files copied from golang.org/x/image's test data (it has no WebP encoder).
func TestTestdata(t *testing.T) {
	if *update {
		writeTestdata(t)
	}
	for _, name := range seedFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Decode(data, Limits{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func writeTestdata(t *testing.T) {
	set := mnistTest(t)
	pix := set.Image(0)
	rng := rand.New(rand.NewPCG(3, 3))
	files := map[string][]byte{}
	files["digit.png"] = uploadtest.EncodePNG(uploadtest.DigitGray(pix))
	files["canvas.png"] = uploadtest.EncodePNG(uploadtest.Canvas(uploadtest.InkMap(pix, 56), 56, color.NRGBA{}))
	g16 := image.NewGray16(image.Rect(0, 0, 28, 28))
	for i, v := range pix {
		g16.Pix[2*i], g16.Pix[2*i+1] = 255-v, 0x80
	}
	files["gray16.png"] = uploadtest.EncodePNG(g16)
	page := uploadtest.Paint{Paper: uploadtest.OffWhite, Ink: uploadtest.Pencil, Noise: 6}.RGBA(uploadtest.InkMap(pix, 56), 56, 56, rng)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, page, &jpeg.Options{Quality: 60}); err != nil {
		t.Fatal(err)
	}
	files["digit.jpg"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := gif.Encode(&b, page, &gif.Options{NumColors: 8}); err != nil {
		t.Fatal(err)
	}
	files["digit.gif"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := bmp.Encode(&b, uploadtest.DigitGray(pix)); err != nil {
		t.Fatal(err)
	}
	files["digit.bmp"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := tiff.Encode(&b, uploadtest.DigitGray(pix), &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	files["digit.tiff"] = bytes.Clone(b.Bytes())

	out, err := exec.Command("go", "list", "-m", "-json", "golang.org/x/image").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("locating golang.org/x/image: %v", err)
	}
	for name, src := range map[string]string{
		"lossless.webp": "gopher-doc.1bpp.lossless.webp",
		"lossy.webp":    "blue-purple-pink.lossy.webp",
	} {
		data, err := os.ReadFile(filepath.Join(mod.Dir, "testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
