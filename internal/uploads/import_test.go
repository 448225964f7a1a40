package uploads

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// digitMembers writes the examples of set as images in class folders under prefix: PNG, and every fifth one JPEG.
// The names sort in the order of the set within a class, as the store keeps them.
func digitMembers(t testing.TB, set *dataset.Set, prefix string) []member {
	var ms []member
	for i := range set.Len() {
		img := grayImage(set.Image(i), set.Cols, set.Rows)
		name := fmt.Sprintf("%s%s/%03d.png", prefix, set.Classes[set.Y[i]], i)
		data := uploadtest.EncodePNG(img)
		if i%5 == 0 {
			name = fmt.Sprintf("%s%s/%03d.jpg", prefix, set.Classes[set.Y[i]], i)
			data = uploadtest.EncodeJPEG(img, 95)
		}
		ms = append(ms, member{name: name, data: data})
	}
	return ms
}

// scanMembers renders the examples of set as a scan would show them: dark ink on light grey paper, twice the size,
// off-centre on a larger page.
func scanMembers(t testing.TB, set *dataset.Set) []member {
	var ms []member
	for i := range set.Len() {
		img := image.NewGray(image.Rect(0, 0, 80, 72))
		for j := range img.Pix {
			img.Pix[j] = 230
		}
		src := set.Image(i)
		for y := range 2 * set.Rows {
			for x := range 2 * set.Cols {
				img.Pix[(y+4)*img.Stride+x+10] = 230 - byte(int(src[y/2*set.Cols+x/2])*200/255)
			}
		}
		ms = append(ms, member{name: fmt.Sprintf("%s/%03d.png", set.Classes[set.Y[i]], i), data: uploadtest.EncodePNG(img)})
	}
	return ms
}

// similarity compares prepared digits with the originals: the mean absolute difference of the pixels on the 0..255
// scale, and the smallest correlation of an image with its original, each shifted by up to a pixel to line them up
// best (recentring by centre of mass may round the other way than MNIST did).
func similarity(got, want *dataset.Set) (meanAbs, minCorr float64) {
	minCorr = 1
	var sum float64
	w, h := want.Cols, want.Rows
	for i := range want.Len() {
		a, b := got.Image(i), want.Image(i)
		for j := range a {
			sum += math.Abs(float64(a[j]) - float64(b[j]))
		}
		best := -1.0
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				var sa, sb, saa, sbb, sab, n float64
				for y := max(0, -dy); y < min(h, h-dy); y++ {
					for x := max(0, -dx); x < min(w, w-dx); x++ {
						u, v := float64(a[(y+dy)*w+x+dx]), float64(b[y*w+x])
						sa, sb, saa, sbb, sab, n = sa+u, sb+v, saa+u*u, sbb+v*v, sab+u*v, n+1
					}
				}
				best = max(best, (sab-sa*sb/n)/math.Sqrt((saa-sa*sa/n)*(sbb-sb*sb/n)))
			}
		}
		minCorr = min(minCorr, best)
	}
	return sum / float64(len(want.X)), minCorr
}

func TestImportDigitArchives(t *testing.T) {
	digits := mnistDigits(t, 50, 0, 1)
	junk := []member{
		{name: "__MACOSX/0/._000.png", data: []byte("\x00\x05\x16\x07 resource fork")},
		{name: ".DS_Store", data: []byte("Bud1")},
		{name: "1/Thumbs.db", data: []byte("not an image")},
		{name: "1/.hidden.png", data: []byte("not an image either")},
	}
	withDirs := func(prefix string, ms []member) []member {
		dirs := []member{
			{name: prefix, hdr: &tar.Header{Typeflag: tar.TypeDir, Name: prefix, Mode: 0o755}},
			{name: prefix + "0/", hdr: &tar.Header{Typeflag: tar.TypeDir, Name: prefix + "0/", Mode: 0o755}},
			{name: prefix + "1/", hdr: &tar.Header{Typeflag: tar.TypeDir, Name: prefix + "1/", Mode: 0o755}},
		}
		return append(dirs, ms...)
	}
	tests := []struct {
		name     string
		archive  []byte
		source   string
		wantName string
	}{
		{"a zip of class folders imports", makeZip(t, append(digitMembers(t, digits, ""), junk...)), "zip", ""},
		{"a zip with a wrapper folder imports under the wrapper's name",
			makeZip(t, digitMembers(t, digits, "digits/")), "zip", "digits"},
		{"a tar.gz made with tar czf . imports",
			makeTar(t, withDirs("./", append(digitMembers(t, digits, "./"), junk...)), true), "tar.gz", ""},
		{"a plain tar with a wrapper folder imports",
			makeTar(t, withDirs("two digits/", digitMembers(t, digits, "two digits/")), false), "tar", "two digits"},
		{"a zip of scans, dark ink on paper at twice the size, imports as MNIST digits",
			makeZip(t, scanMembers(t, digits)), "zip", ""},
	}
	s, _ := openStore(t, Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := s.Import(context.Background(), tt.archive, ImportOptions{Preprocess: model.PreprocessMNIST})
			if err != nil {
				t.Fatal(err)
			}
			want := Info{ID: info.ID, Name: tt.wantName, Classes: []string{"0", "1"}, Counts: []int{50, 50},
				Examples: 100, Width: 28, Height: 28, Preprocess: model.PreprocessMNIST, Source: tt.source,
				Created: info.Created}
			if !equalInfo(info, want) {
				t.Errorf("got %+v; want %+v", info, want)
			}
			set, err := s.Load(info.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(set.Y, digits.Y) || set.Rows != 28 || set.Cols != 28 || set.Name != info.ID {
				t.Fatalf("got labels %v, %dx%d, name %q; want %v, 28x28, %q", set.Y, set.Cols, set.Rows, set.Name,
					digits.Y, info.ID)
			}
			// Refitting an MNIST digit into 20x20 and recentring it moves it by a pixel at most; JPEG adds noise.
			meanAbs, minCorr := similarity(set, digits)
			t.Logf("mean |difference| %.1f/255, least correlation %.3f", meanAbs, minCorr)
			if meanAbs > 6 || minCorr < 0.9 {
				t.Errorf("got mean |difference| %.1f and least correlation %.3f; want at most 6 and at least 0.9",
					meanAbs, minCorr)
			}
		})
	}
	t.Run("the store lists every imported set", func(t *testing.T) {
		infos, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != len(tests) {
			t.Errorf("got %d sets; want %d", len(infos), len(tests))
		}
	})
}

func equalInfo(a, b Info) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Classes, b.Classes) && slices.Equal(a.Counts, b.Counts) &&
		a.Examples == b.Examples && a.Width == b.Width && a.Height == b.Height && a.Preprocess == b.Preprocess && max(a.Channels, 1) == max(b.Channels, 1) &&
		a.Source == b.Source && a.Created.Equal(b.Created)
}

// photo draws a photo-like picture: a coloured gradient with a blob and sensor noise, bright for day and dark for
// night.
func photo(rng *rand.Rand, w, h int, day bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := 40.0
	if day {
		base = 190
	}
	cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
	for y := range h {
		for x := range w {
			v := base + 30*float64(y)/float64(h) - 20*math.Exp(-((float64(x)-cx)*(float64(x)-cx)+
				(float64(y)-cy)*(float64(y)-cy))/50) + rng.NormFloat64()*6
			c := func(f float64) uint8 { return uint8(min(max(v*f, 0), 255)) }
			img.SetRGBA(x, y, color.RGBA{c(1.05), c(1), c(0.85), 255})
		}
	}
	return img
}

func TestImportPhotosWithResize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ms []member
	for i := range 40 {
		day := i%2 == 0
		class := map[bool]string{true: "day", false: "night"}[day]
		img := photo(rng, 64+i%7, 48+i%5, day)
		var data []byte
		switch i % 3 {
		case 0:
			data = uploadtest.EncodePNG(img)
		case 1:
			data = uploadtest.EncodeJPEG(img, 80)
		default:
			var buf bytes.Buffer
			if err := gif.Encode(&buf, img, nil); err != nil {
				t.Fatal(err)
			}
			data = buf.Bytes()
		}
		ms = append(ms, member{name: fmt.Sprintf("photos/%s/IMG_%04d.x", class, i), data: data})
	}
	s, _ := openStore(t, Limits{})
	info, err := s.Import(context.Background(), makeTar(t, ms, true), ImportOptions{Width: 16, Height: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the info describes the set", func(t *testing.T) {
		want := Info{ID: info.ID, Name: "photos", Classes: []string{"day", "night"}, Counts: []int{20, 20},
			Examples: 40, Width: 16, Height: 12, Preprocess: model.PreprocessResize, Channels: 3, Source: "tar.gz",
			Created: info.Created}
		if !equalInfo(info, want) {
			t.Errorf("got %+v; want %+v", info, want)
		}
		// The photos are tinted, so the set keeps their colour.
		if got := info.Input(); got != (model.Input{Width: 16, Height: 12, Preprocess: model.PreprocessResize, Channels: 3}) {
			t.Errorf("got input %+v; want 16x12x3 resize", got)
		}
	})
	t.Run("day examples are bright and night examples dark", func(t *testing.T) {
		set, err := s.Load(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range set.Len() {
			var sum int
			for _, p := range set.Image(i) {
				sum += int(p)
			}
			mean := sum / set.Features()
			if class := set.Classes[set.Y[i]]; class == "day" && mean < 150 || class == "night" && mean > 90 {
				t.Errorf("example %d (%s) has mean brightness %d; want over 150 for day, under 90 for night", i,
					class, mean)
			}
		}
	})
}

// idxBytes encodes an IDX file, gzip-compressed if asked.
func idxBytes(t testing.TB, dims []int, data []byte, compress bool) []byte {
	var buf bytes.Buffer
	if !compress {
		if err := dataset.WriteIDX(&buf, dims, data); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	zw := gzip.NewWriter(&buf)
	if err := dataset.WriteIDX(zw, dims, data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportIDX(t *testing.T) {
	digits := mnistDigits(t, 30, 3, 7, 9) // labels 3, 7 and 9: the classes are 0..9, some of them empty
	images := func(gz bool) []byte { return idxBytes(t, []int{digits.Len(), 28, 28}, digits.X, gz) }
	labels := func(gz bool) []byte { return idxBytes(t, []int{digits.Len()}, digits.Y, gz) }
	names := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	decimal := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	counts := []int{0, 0, 0, 30, 0, 0, 0, 30, 0, 30}
	tests := []struct {
		name          string
		images        []byte
		labels        []byte
		opts          ImportOptions
		classes       []string
		width, height int
		mode          model.Preprocessing
	}{
		{"plain IDX files import as MNIST digits at their own size", images(false), labels(false),
			ImportOptions{}, decimal, 28, 28, model.PreprocessMNIST},
		{"gzip IDX files import with the class names given", images(true), labels(true),
			ImportOptions{Name: "three digits", Classes: names}, names, 28, 28, model.PreprocessMNIST},
		{"IDX files import resized to another size", images(true), labels(false),
			ImportOptions{Preprocess: model.PreprocessResize, Width: 14, Height: 14}, decimal, 14, 14,
			model.PreprocessResize},
	}
	s, _ := openStore(t, Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := s.ImportIDX(context.Background(), tt.images, tt.labels, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := Info{ID: info.ID, Name: tt.opts.Name, Classes: tt.classes, Counts: counts, Examples: 90,
				Width: tt.width, Height: tt.height, Preprocess: tt.mode, Source: "idx", Created: info.Created}
			if !equalInfo(info, want) {
				t.Errorf("got %+v; want %+v", info, want)
			}
			set, err := s.Load(info.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(set.Y, digits.Y) || !slices.Equal(set.Classes, tt.classes) {
				t.Fatalf("got labels %v, classes %q; want %v, %q", set.Y, set.Classes, digits.Y, tt.classes)
			}
			if tt.width != 28 {
				return
			}
			meanAbs, minCorr := similarity(set, digits)
			t.Logf("mean |difference| %.1f/255, least correlation %.3f", meanAbs, minCorr)
			if meanAbs > 6 || minCorr < 0.9 {
				t.Errorf("got mean |difference| %.1f and least correlation %.3f; want at most 6 and at least 0.9",
					meanAbs, minCorr)
			}
		})
	}
}
