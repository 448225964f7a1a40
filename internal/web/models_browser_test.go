package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/perceptron-dev/perceptron/internal/app"
	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/testwait"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// halvesModel trains a small photo model, as one trained on an uploaded set of pictures is: 8x8 inputs with the
// resize preprocessing, two classes, light in the top half ("top") or in the bottom half ("bottom").
func halvesModel(t *testing.T) *model.Network {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, 8))
	set := &dataset.Set{Name: "halves", Classes: []string{"top", "bottom"}, Rows: 8, Cols: 8}
	for i := range 400 {
		y := uint8(i % 2)
		for p := range 64 {
			v := 40 + rng.IntN(40)
			if (p < 32) == (y == 0) {
				v += 150
			}
			set.X = append(set.X, uint8(v))
		}
		set.Y = append(set.Y, y)
	}
	req := train.DefaultRequest()
	req.Dataset, req.Hidden, req.Epochs = "halves", []int{8}, 5
	res, err := train.Train(context.Background(), req, set, train.Options{Name: "halves",
		Input: model.Input{Width: 8, Height: 8, Preprocess: model.PreprocessResize}})
	if err != nil {
		t.Fatal(err)
	}
	res.Network.Version = "halves-1"
	return res.Network
}

// halfPhoto writes a colour photo whose light half is the top or the bottom: orange over dark blue, or the reverse.
func halfPhoto(t *testing.T, dir string, lightTop bool) string {
	t.Helper()
	light, dark := color.RGBA{255, 160, 0, 255}, color.RGBA{0, 0, 90, 255}
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			c := dark
			if (y < 24) == lightTop {
				c = light
			}
			img.SetRGBA(x, y, c)
		}
	}
	name := "light-bottom.png"
	if lightTop {
		name = "light-top.png"
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// importSet stores a data set of two classes, a square of ink in the top-left or the bottom-right corner of a
// 16x16 picture (red on blue when colour, white on black otherwise), prepared as opts say, and returns its id.
func importSet(t *testing.T, svc *app.Service, opts uploads.ImportOptions, colour bool) string {
	t.Helper()
	ink, paper := color.RGBA{255, 255, 255, 255}, color.RGBA{0, 0, 0, 255}
	if colour {
		ink, paper = color.RGBA{220, 30, 30, 255}, color.RGBA{20, 20, 160, 255}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 8 {
		class := []string{"top", "bottom"}[i%2]
		img := image.NewRGBA(image.Rect(0, 0, 16, 16))
		for y := range 16 {
			for x := range 16 {
				c := paper
				if (class == "top" && x < 8 && y < 8) || (class == "bottom" && x >= 8 && y >= 8) {
					c = ink
				}
				img.SetRGBA(x, y, c)
			}
		}
		w, err := zw.Create(fmt.Sprintf("%s/%d.png", class, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(w, img); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := svc.Sets.Import(context.Background(), buf.Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// waitDatasets waits until the training form offers exactly the data sets want, in any order.
func (b *browser) waitDatasets(t *testing.T, what string, want ...string) {
	t.Helper()
	slices.Sort(want)
	b.waitFor(t, what, `(() => {
		const got = [...document.getElementById("dataset").options].map((o) => o.value).sort().join(",");
		return got === `+fmt.Sprintf("%q", strings.Join(want, ","))+` && got;
	})()`, 10*time.Second)
}

// pick chooses a model in the page's picker as a person does, which fires the select's change event.
func (b *browser) pick(t *testing.T, name string) {
	t.Helper()
	b.do(t, "choosing model "+name, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById("model");
		s.value = `+fmt.Sprintf("%q", name)+`;
		s.dispatchEvent(new Event("change", {bubbles: true}));
	})()`))
}

// widget is what the page shows for the chosen model before anything is drawn or chosen.
type widget struct {
	PadShown bool     `json:"padShown"`
	Hint     string   `json:"hint"`
	Summary  string   `json:"summary"`
	Bars     []string `json:"bars"`
	Train    string   `json:"train"`
	Versions []string `json:"versions"`
}

func (b *browser) widget(t *testing.T) widget {
	t.Helper()
	raw := eval[[]byte](t, b, `(() => ({
		padShown: getComputedStyle(document.getElementById("pad")).display !== "none",
		hint: document.getElementById("try-hint").textContent,
		summary: document.getElementById("summary-text").textContent,
		bars: [...document.querySelectorAll("#bars li .name")].map((e) => e.textContent),
		train: document.getElementById("train-model").value,
		versions: [...document.querySelectorAll("#models tbody tr[data-version]")].map((r) => r.dataset.version),
	}))()`)
	var w widget
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatalf("reading the page %s: %v", raw, err)
	}
	return w
}

// TestBrowserFollowsTheChosenModel serves a photo model beside the digit model and drives the page between them:
// the picker lists both, and choosing one changes the words, the input widget (a pad for digits, a photo picker
// with a colour preview for photos), the class bars (named by that model's labels), where predictions go, the
// versions listed and activated, and the model a training job names.
func TestBrowserFollowsTheChosenModel(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser tests start Chromium; they run without -short (see .ci/browser)")
	}
	chromiumPath(t)
	artifacts := artifactsDir(t)
	srv, svc, def := newService(t)
	halves := halvesModel(t)
	if err := svc.Registry.Put(halves); err != nil {
		t.Fatal(err)
	}
	digits := mnistTest(t)
	files := t.TempDir()
	b := newBrowser(t)
	b.viewport = viewport{width: 1280, height: 1000, scale: 1}
	b.do(t, "opening the page", b.viewport.emulate(b.viewport.height), chromedp.Navigate(srv.URL+"/"))
	b.waitFor(t, "the serving version", `document.getElementById("serving-version").textContent.includes("`+def.Version+`")`, 10*time.Second)

	options := eval[string](t, b, `[...document.getElementById("model").options].map((o) => o.value + "=" + o.textContent).join("|") +
		" chosen " + document.getElementById("model").value`)
	if want := def.Name + "=" + def.Name + "|halves=halves (no active version) chosen " + def.Name; options != want {
		t.Errorf("the picker: %q; want %q", options, want)
	}
	// Three uploaded sets besides mnist: the training form offers each only for the models it can train.
	colourSet := importSet(t, svc, uploads.ImportOptions{Name: "colour squares", Preprocess: model.PreprocessResize, Channels: 3}, true)
	graySet := importSet(t, svc, uploads.ImportOptions{Name: "gray squares", Preprocess: model.PreprocessResize, Channels: 1}, false)
	digitSet := importSet(t, svc, uploads.ImportOptions{Name: "digit-like squares", Preprocess: model.PreprocessMNIST}, false)
	b.do(t, "entering the token", chromedp.SendKeys(chromedp.ID("token"), adminToken), chromedp.Click(chromedp.ID("use-token")))
	b.waitFor(t, "the digit model's versions", `document.querySelector('#models tr[data-version="`+def.Version+`"] .badge') && "yes"`, 10*time.Second)
	b.waitDatasets(t, "the digit model's data sets: mnist and the one prepared as MNIST", "mnist", digitSet)
	if w := b.widget(t); strings.Contains(strings.Join(w.Versions, " "), halves.Version) || w.Train != def.Name {
		t.Errorf("with %s chosen the versions are %q and the training form names %q; want none of halves and %s", def.Name, w.Versions, w.Train, def.Name)
	}

	t.Run("choosing a model with no active version lists its versions, and activating one serves it", func(t *testing.T) {
		b.pick(t, "halves")
		b.waitFor(t, "the photo model's versions", `document.querySelector('#models button[data-version="`+halves.Version+`"]') && "yes"`, 10*time.Second)
		if w := b.widget(t); len(w.Versions) != 1 || w.Train != "halves" || !strings.Contains(w.Summary, "no active version") {
			t.Errorf("halves chosen before activation: versions %q, training names %q, the page says %q; want halves-1 alone, "+
				"halves, and that it has no active version", w.Versions, w.Train, w.Summary)
		}
		b.do(t, "activating "+halves.Version, chromedp.Click(chromedp.CSS(`#models button[data-version="`+halves.Version+`"]`)))
		b.waitFor(t, "the photo model serving", `document.getElementById("serving-version").textContent === "halves `+halves.Version+`" &&
			document.querySelector('#models tr[data-version="`+halves.Version+`"] .badge') && "yes"`, 10*time.Second)
		b.waitDatasets(t, "the photo model's data sets: the uploads prepared as photos", colourSet, graySet)
		if kinds := eval[string](t, b, `[...document.getElementById("dataset").options].map((o) => o.textContent).sort().join("|")`); kinds !=
			"colour squares (8 examples, colour)|gray squares (8 examples, gray)" {
			t.Errorf("the photo model's data sets read %q; want each with its examples and whether it is in colour", kinds)
		}
	})

	t.Run("the photo model's page is a photo picker with its own words and bars", func(t *testing.T) {
		w := b.widget(t)
		if w.PadShown || !strings.Contains(w.Hint, "photo") || !strings.Contains(w.Hint, "top and bottom") ||
			!strings.HasPrefix(w.Summary, "Choose or drop a photo") || strings.Join(w.Bars, ",") != "top,bottom" {
			t.Errorf("halves chosen: pad shown %v, hint %q, summary %q, bars %q; want no pad, a hint to choose a photo of top "+
				"and bottom, and the bars top and bottom", w.PadShown, w.Hint, w.Summary, w.Bars)
		}
	})

	t.Run("a photo sent to the photo model is answered by it, and previewed in colour", func(t *testing.T) {
		for _, c := range []struct {
			lightTop bool
			drop     bool
			want     string
		}{{true, false, "top"}, {false, true, "bottom"}} {
			path := halfPhoto(t, files, c.lightTop)
			if c.drop {
				b.drop(t, path)
			} else {
				b.do(t, "choosing "+path, chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}))
			}
			r := b.result(t)
			if r.Label != c.want || r.Bars != 2 || r.Best != c.want || r.Version != "halves "+halves.Version || r.ErrorMsg != "" {
				t.Errorf("chose %s: label %q, %d bars, best %q, model %q %s; want %s, 2 bars, best %s, model halves %s",
					filepath.Base(path), r.Label, r.Bars, r.Best, r.Version, r.ErrorMsg, c.want, c.want, halves.Version)
			}
			// The preview shows the file as it is: its light half orange, not gray.
			rgb := eval[[]float64](t, b, `(() => {
				const img = document.getElementById("preview");
				const c = document.createElement("canvas");
				c.width = img.naturalWidth; c.height = img.naturalHeight;
				const g = c.getContext("2d");
				g.drawImage(img, 0, 0);
				return [...g.getImageData(c.width / 2, `+map[bool]string{true: "c.height / 4", false: "c.height * 3 / 4"}[c.lightTop]+`, 1, 1).data];
			})()`)
			if len(rgb) != 4 || rgb[0] < 200 || rgb[2] > 60 {
				t.Errorf("chose %s: the preview's light half is %v; want orange (255, 160, 0)", filepath.Base(path), rgb)
			}
		}
		b.screenshot(t, artifacts, "models-1-photo")
		if n := b.predictsTo(t, srv.URL, "halves"); n == 0 {
			t.Error("no prediction went to /predict?model=halves")
		}
	})

	t.Run("switching back to the digit model brings back the pad, its bars and its versions", func(t *testing.T) {
		b.pick(t, def.Name)
		b.waitFor(t, "the digit model's versions", `document.querySelector('#models tr[data-version="`+def.Version+`"] .badge') && "yes"`, 10*time.Second)
		w := b.widget(t)
		if !w.PadShown || !strings.HasPrefix(w.Hint, "Draw a digit") || strings.Join(w.Bars, "") != "0123456789" ||
			strings.Contains(strings.Join(w.Versions, " "), halves.Version) || w.Train != def.Name {
			t.Errorf("back on %s: pad shown %v, hint %q, bars %q, versions %q, training names %q; want the pad, \"Draw a digit\", "+
				"bars 0 to 9, no halves version, %s", def.Name, w.PadShown, w.Hint, w.Bars, w.Versions, w.Train, def.Name)
		}
		b.waitDatasets(t, "the digit model's data sets again", "mnist", digitSet)
		b.draw(t, skeletonStrokes(digits.Image(firstOf(t, digits, 7)), digits.Cols, digits.Rows), mouse)
		if r := b.result(t); r.Label != "7" || r.Bars != 10 || !strings.Contains(r.Version, def.Version) || r.ErrorMsg != "" {
			t.Errorf("drew a 7 on %s: label %q, %d bars, model %q %s; want 7, 10 bars, %s", def.Name, r.Label, r.Bars, r.Version, r.ErrorMsg, def.Version)
		}
		b.screenshot(t, artifacts, "models-2-digits-again")
	})

	t.Run("a training job names the model the form says", func(t *testing.T) {
		b.do(t, "filling the form",
			chromedp.SetValue(chromedp.ID("train-model"), "digits-small"),
			chromedp.SetValue(chromedp.ID("hidden"), "8"),
			chromedp.SetValue(chromedp.ID("epochs"), "1"),
			chromedp.SetValue(chromedp.ID("limit"), "500"),
			chromedp.SetValue(chromedp.ID("activate"), "never"),
			chromedp.Click(chromedp.ID("start")))
		status := b.waitFor(t, "the job to finish", `/succeeded|failed|cancelled/.test(document.getElementById("job-status").className) &&
			document.getElementById("job-status").textContent`, testwait.Timeout(t))
		if !strings.Contains(status, "succeeded") || !strings.Contains(status, "Model digits-small, version") {
			t.Fatalf("the job: %q; want it to succeed and name model digits-small", status)
		}
		b.waitFor(t, "the new model in the picker", `[...document.getElementById("model").options].some((o) => o.value === "digits-small") && "yes"`, 10*time.Second)
		names, err := svc.Registry.Names()
		if err != nil || strings.Join(names, ",") != "digits-small,halves,"+def.Name {
			t.Errorf("the registry's models: %q %v; want digits-small, halves and %s", names, err, def.Name)
		}
	})

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser console: %s", p)
	}
}

// drop drops a file on the middle of the page's drop box, as a file dragged from the desktop.
func (b *browser) drop(t *testing.T, path string) {
	t.Helper()
	b.do(t, "scrolling to the box", chromedp.Evaluate[chromedp.Void](`document.getElementById("dropzone").scrollIntoView({block: "center"})`))
	var rect [4]float64
	if err := json.Unmarshal(eval[[]byte](t, b, `(() => { const r = document.getElementById("dropzone").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`), &rect); err != nil {
		t.Fatal(err)
	}
	x, y := rect[0]+rect[2]/2, rect[1]+rect[3]/2
	data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{path}, DragOperationsMask: 1}
	for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
		call(t, b, "drag "+string(typ), input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: x, Y: y, Data: data})
	}
}

// predictsTo counts the page's requests to /predict that named model.
func (b *browser) predictsTo(t *testing.T, base, name string) int {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	own, _ := url.Parse(base)
	n := 0
	for _, r := range b.requests {
		u, err := url.Parse(r.URL)
		if err == nil && u.Host == own.Host && u.Path == "/predict" && r.Method == http.MethodPost && u.Query().Get("model") == name {
			n++
		}
	}
	return n
}
