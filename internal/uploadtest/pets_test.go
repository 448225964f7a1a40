package uploadtest

import (
	"archive/zip"
	"bytes"
	"image"
	_ "image/jpeg"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestPetsDrawsBalancedDecodableClasses(t *testing.T) {
	a := Pets(10, rand.New(rand.NewPCG(1, 2)))
	b := Pets(10, rand.New(rand.NewPCG(1, 2)))
	counts := map[string]int{}
	for i, im := range a {
		counts[im.Label]++
		if !bytes.Equal(im.Data, b[i].Data) {
			t.Fatalf("picture %d differs between two runs of one seed", i)
		}
		if _, _, err := image.Decode(bytes.NewReader(im.Data)); err != nil {
			t.Fatalf("picture %d: %v", i, err)
		}
	}
	if counts["cat"] != 10 || counts["dog"] != 10 {
		t.Fatalf("got %v; want 10 of each class", counts)
	}
	zr, err := zip.NewReader(bytes.NewReader(Zip("pets", a)), int64(len(Zip("pets", a))))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 20 || !strings.HasPrefix(zr.File[0].Name, "pets/"+a[0].Label+"/") {
		t.Fatalf("got %d entries, the first %q; want 20 under pets/<label>/", len(zr.File), zr.File[0].Name)
	}
}
