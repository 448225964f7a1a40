package web_test

// The tests in this file drive the page in a real browser: Debian's Chromium, headless, through the DevTools
// protocol (chromedp), against the whole API served in-process. They draw real MNIST test digits on the canvas with
// mouse, pen and touch events, upload and drop PNG files, run a tiny training job and activate and roll back
// versions, and save screenshots for a person to look at. They run in the long pass of .ci/run (without -short);
// see .ci/browser for installing Chromium and running them alone.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/app"
	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

const adminToken = "browser-test-token"

// chromiumPath finds the browser: $CHROMIUM when set, else Debian's /usr/bin/chromium, else chromium on the PATH.
// Without one the test fails, saying how to install it; under -short it skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	var candidates []string
	if env := os.Getenv("CHROMIUM"); env != "" {
		candidates = []string{env}
	} else {
		candidates = []string{"/usr/bin/chromium"}
		if p, err := exec.LookPath("chromium"); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	how := fmt.Sprintf("no Chromium at %s: install Debian's package with `apt-get install -y chromium` "+
		"(or run `bash .ci/browser install`), or point $CHROMIUM at a Chromium binary", strings.Join(candidates, " or "))
	if testing.Short() {
		t.Skip(how + " (-short skips the browser tests anyway)")
	}
	t.Fatal(how)
	return ""
}

// artifactsDir is where screenshots go: $ARTIFACTS_DIR, else a new temporary folder that outlives the test so a
// person can look at them.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "perceptron-web-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// newServer starts the whole service, built as the binary builds it, over a temporary registry serving the
// embedded model.
func newServer(t *testing.T) (*httptest.Server, *model.Network) {
	t.Helper()
	srv, _, net := newService(t)
	return srv, net
}

// newService is newServer with the service, for a test that writes into its registry.
func newService(t *testing.T) (*httptest.Server, *app.Service, *model.Network) {
	t.Helper()
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc, err := app.New(zap.NewNop(), app.Config{ModelDir: dir, DataDir: dir, Embedded: net,
		Engine: inference.Config{Workers: 2}, API: api.Config{AdminToken: adminToken}, TrainNormalPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); svc.Close() })
	return srv, svc, net
}

func mnistTest(t *testing.T) *dataset.Set { return mnisttest.Test(t) }

// firstOf returns the index of the first test digit with the label.
func firstOf(t *testing.T, s *dataset.Set, label int) int {
	t.Helper()
	for i, y := range s.Y {
		if int(y) == label {
			return i
		}
	}
	t.Fatalf("no test digit %d", label)
	return -1
}

// browser is one headless Chromium tab on the page, with what the page did recorded: every request it made, and
// every console error, exception and policy violation.
type browser struct {
	ctx      context.Context
	viewport viewport

	mu       sync.Mutex
	requests []*network.Request
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions"),
		chromedp.Flag("force-color-profile", "srgb"),
		// Nothing may leave the machine: every host name but the test server's resolves to nothing.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("starting Chromium: %v", err)
	}

	b := &browser{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The one failed request the tests cause on purpose is the wrong admin token's 401.
			expected := strings.Contains(m.Text, "status of 401")
			if !expected && (m.IsException() || m.Type == "error" || strings.Contains(m.Text, "Content Security Policy")) {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs steps with a deadline, failing the test on error.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor evaluates expr until it gives a non-empty string, and returns that. It polls from Go: chromedp.Poll
// compiles its predicate with new Function, which the page's Content-Security-Policy rightly forbids.
func (b *browser) waitFor(t *testing.T, what, expr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v := eval[string](t, b, `String((() => { const v = `+expr+`; return v || ""; })())`); v != "" {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not there after %v\npage says: %s", what, timeout, eval[string](t, b, `document.body.innerText.slice(0, 1500)`))
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// screenshot saves the whole page as a PNG. It grows the viewport to the page's height for the capture, rather
// than asking Chromium to paint beyond the viewport, which in headless mode sometimes leaves parts blank.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	height := int64(eval[float64](t, b, `Math.ceil(document.documentElement.scrollHeight)`))
	b.do(t, "growing the viewport", b.viewport.emulate(height))
	// Two animation frames: the browser has laid out and painted the taller viewport.
	b.do(t, "waiting for paint", chromedp.Evaluate[chromedp.Void](
		`new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))`, chromedp.EvalAsValue,
		func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	b.do(t, "restoring the viewport", b.viewport.emulate(b.viewport.height))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// viewport is the screen the page is shown on.
type viewport struct {
	width, height int64
	scale         float64
}

func (v viewport) emulate(height int64) chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(v.width, height, chromedp.EmulateScale(v.scale))
}

// result is what the page shows once the prediction for what is on screen has come back.
type result struct {
	Label    string    `json:"label"`
	Bars     int       `json:"bars"`
	Best     string    `json:"best"`
	Version  string    `json:"version"`
	SeenInk  float64   `json:"seenInk"`
	Corner   []float64 `json:"corner"`
	ErrorMsg string    `json:"error"`
}

func (b *browser) result(t *testing.T) result {
	t.Helper()
	b.waitFor(t, "the prediction", `document.getElementById("summary").dataset.pending === "0" &&
		(document.getElementById("label").textContent !== "–" || !document.getElementById("predict-error").hidden) && "done"`, 15*time.Second)
	raw := eval[[]byte](t, b, `(() => {
		const seen = document.getElementById("seen");
		const px = seen.getContext("2d").getImageData(0, 0, seen.width, seen.height).data;
		let ink = 0;
		for (let i = 0; i < px.length; i += 4) ink += px[i] / 255;
		const best = document.querySelector("#bars li.best .name");
		return {
			label: document.getElementById("label").textContent,
			bars: document.querySelectorAll("#bars li").length,
			best: best ? best.textContent : "",
			version: document.getElementById("model-version").textContent,
			seenInk: ink,
			corner: [...document.getElementById("pad").getContext("2d").getImageData(0, 0, 1, 1).data],
			error: document.getElementById("predict-error").hidden ? "" : document.getElementById("predict-error").textContent,
		};
	})()`)
	var r result
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reading the result %s: %v", raw, err)
	}
	return r
}

// A pointer is how a stroke is dispatched: as a mouse, a pen or a finger.
type pointer string

const (
	mouse pointer = "mouse"
	pen   pointer = "pen"
	touch pointer = "touch"
)

// draw dispatches the strokes, in 28x28 digit coordinates, as real input events on the canvas.
func (b *browser) draw(t *testing.T, strokes [][]point, how pointer) {
	t.Helper()
	b.do(t, "scrolling to the pad", chromedp.Evaluate[chromedp.Void](`document.getElementById("pad").scrollIntoView({block: "center"})`))
	var rect [4]float64
	raw := eval[[]byte](t, b, `(() => { const r = document.getElementById("pad").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	if err := json.Unmarshal(raw, &rect); err != nil {
		t.Fatal(err)
	}
	// Pixel centres of the 28x28 grid, scaled to the canvas as it is laid out.
	at := func(x, y float64) (float64, float64) {
		return rect[0] + (x+0.5)*rect[2]/28, rect[1] + (y+0.5)*rect[3]/28
	}
	if how == touch {
		call(t, b, "touch emulation on", emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 1})
		defer call(t, b, "touch emulation off", emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: false})
	}
	for _, s := range strokes {
		// Two steps per pixel, as a hand moves between the pixel centres.
		var path [][2]float64
		for i, p := range s {
			if i > 0 {
				q := s[i-1]
				path = append(path, [2]float64{float64(q.x+p.x) / 2, float64(q.y+p.y) / 2})
			}
			path = append(path, [2]float64{float64(p.x), float64(p.y)})
		}
		for i, p := range path {
			x, y := at(p[0], p[1])
			switch how {
			case touch:
				id := 1.0
				typ := input.DispatchTouchEventTypeTouchMove
				if i == 0 {
					typ = input.DispatchTouchEventTypeTouchStart
				}
				call(t, b, "touch", input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ,
					TouchPoints: []*input.TouchPoint{{X: x, Y: y, ID: &id}}})
			default:
				ev := input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: x, Y: y,
					Buttons: 1, PointerType: input.DispatchMouseEventPointerType(how)}
				if i == 0 {
					ev.Type, ev.Button, ev.ClickCount = input.DispatchMouseEventTypeMousePressed, input.MouseButtonLeft, 1
				}
				call(t, b, "pointer", input.DispatchMouseEvent, ev)
			}
		}
		x, y := at(path[len(path)-1][0], path[len(path)-1][1])
		if how == touch {
			call(t, b, "touch end", input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd,
				TouchPoints: []*input.TouchPoint{}})
		} else {
			call(t, b, "pointer up", input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseReleased,
				X: x, Y: y, Button: input.MouseButtonLeft, ClickCount: 1, PointerType: input.DispatchMouseEventPointerType(how)})
		}
	}
}

// call sends one protocol command that answers nothing, failing the test on error.
func call[P any](t *testing.T, b *browser, what string, cmd cdp.Command[P, cdp.Empty], params P) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, cmd, params); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// digitPNG writes test digit i as a PNG file, white ink on black as MNIST stores it.
func digitPNG(t *testing.T, s *dataset.Set, i int, dir string) string {
	t.Helper()
	g := image.NewGray(image.Rect(0, 0, s.Cols, s.Rows))
	copy(g.Pix, s.Image(i))
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("mnist-test-%d-label-%d.png", i, s.Y[i]))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser tests start Chromium and train a model; they run without -short (see .ci/browser)")
	}
	start := time.Now()
	chromiumPath(t) // fail early, with instructions, when there is no browser
	artifacts := artifactsDir(t)
	srv, def := newServer(t)
	digits := mnistTest(t)
	files := t.TempDir() // images to pick and drop; the page reads them when they are chosen
	b := newBrowser(t)

	b.viewport = viewport{width: 1280, height: 1000, scale: 1}
	b.do(t, "opening the page", b.viewport.emulate(b.viewport.height), chromedp.Navigate(srv.URL+"/"))
	b.waitFor(t, "the serving version", `document.getElementById("serving-version").textContent.includes("`+def.Version+`")`, 10*time.Second)
	if unlabelled := eval[[]string](t, b, `[...document.querySelectorAll("input, select, button, canvas")]
		.filter((e) => (e.labels ? e.labels.length === 0 : true) && !e.getAttribute("aria-label") && !e.textContent.trim())
		.map((e) => e.id || e.outerHTML.slice(0, 60))`); len(unlabelled) > 0 {
		t.Errorf("controls without a label or accessible name: %q", unlabelled)
	}

	t.Run("drawing real MNIST digits on the canvas shows their labels", func(t *testing.T) {
		for _, c := range []struct {
			label int
			how   pointer
		}{{7, mouse}, {1, pen}, {0, touch}, {2, mouse}, {3, mouse}} {
			i := firstOf(t, digits, c.label)
			strokes := skeletonStrokes(digits.Image(i), digits.Cols, digits.Rows)
			b.do(t, "clearing", chromedp.Click(chromedp.ID("clear")))
			b.draw(t, strokes, c.how)
			r := b.result(t)
			t.Logf("test digit %d (a %d), %d strokes with a %s: the page shows %q", i, c.label, len(strokes), c.how, r.Label)
			if r.ErrorMsg != "" {
				t.Fatalf("the page shows an error: %s", r.ErrorMsg)
			}
			if r.Label != fmt.Sprint(c.label) {
				b.screenshot(t, artifacts, fmt.Sprintf("wrong-%d", c.label))
				t.Errorf("drew a %d with a %s: the page shows %q; want %d", c.label, c.how, r.Label, c.label)
			}
			if r.Bars != 10 || r.Best != r.Label || r.SeenInk < 20 || !strings.Contains(r.Version, def.Version) {
				t.Errorf("drew a %d: %d bars, best bar %q, %.0f of ink in the 28x28 input, model %q; want 10 bars, the best "+
					"the label, the input the model saw drawn, the serving version", c.label, r.Bars, r.Best, r.SeenInk, r.Version)
			}
			if len(r.Corner) != 4 || r.Corner[3] != 0 {
				t.Errorf("the canvas corner is %v; want it transparent (the page must not paint a background)", r.Corner)
			}
			if c.label == 7 {
				b.screenshot(t, artifacts, "1-drawn-7")
			}
		}
	})

	t.Run("choosing a file shows its label", func(t *testing.T) {
		i := firstOf(t, digits, 4)
		path := digitPNG(t, digits, i, files)
		b.do(t, "choosing "+path, chromedp.Click(chromedp.ID("clear")), chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}))
		if r := b.result(t); r.Label != "4" || r.ErrorMsg != "" {
			t.Errorf("chose %s: the page shows %q %s; want 4", filepath.Base(path), r.Label, r.ErrorMsg)
		}
		b.screenshot(t, artifacts, "2-uploaded-4")
	})

	t.Run("choosing a blank page shows that no digit was found", func(t *testing.T) {
		blank := image.NewGray(image.Rect(0, 0, 280, 280))
		for i := range blank.Pix {
			blank.Pix[i] = 250
		}
		var buf bytes.Buffer
		png.Encode(&buf, blank)
		path := filepath.Join(files, "blank-page.png")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		b.do(t, "choosing "+path, chromedp.Click(chromedp.ID("clear")), chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}))
		if r := b.result(t); r.Label != "no digit found" || r.Best != "" || r.ErrorMsg != "" {
			t.Errorf("chose a blank page: the page shows %q (best bar %q) %s; want \"no digit found\" and no best bar", r.Label, r.Best, r.ErrorMsg)
		}
	})

	t.Run("dropping a file on the pad shows its label", func(t *testing.T) {
		i := firstOf(t, digits, 9)
		path := digitPNG(t, digits, i, files)
		b.do(t, "scrolling to the pad", chromedp.Evaluate[chromedp.Void](`document.getElementById("pad").scrollIntoView({block: "center"})`))
		var rect [4]float64
		json.Unmarshal(eval[[]byte](t, b, `(() => { const r = document.getElementById("dropzone").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`), &rect)
		x, y := rect[0]+rect[2]/2, rect[1]+rect[3]/2
		b.do(t, "clearing", chromedp.Click(chromedp.ID("clear")))
		data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{path}, DragOperationsMask: 1}
		for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
			call(t, b, "drag "+string(typ), input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: x, Y: y, Data: data})
		}
		if r := b.result(t); r.Label != "9" || r.ErrorMsg != "" {
			t.Errorf("dropped %s: the page shows %q %s; want 9", filepath.Base(path), r.Label, r.ErrorMsg)
		}
	})

	t.Run("a tiny training job draws its curves, and versions can be activated and rolled back", func(t *testing.T) {
		b.do(t, "entering the token",
			chromedp.SendKeys(chromedp.ID("token"), adminToken),
			chromedp.Click(chromedp.ID("use-token")))
		b.waitFor(t, "the training form", `!document.getElementById("train-fields").disabled && "on"`, 10*time.Second)
		b.waitFor(t, "the model list", `document.querySelector('#models tr[data-version="`+def.Version+`"] .badge')`, 10*time.Second)
		b.do(t, "filling the form",
			chromedp.SetValue(chromedp.ID("hidden"), "16"),
			chromedp.SetValue(chromedp.ID("epochs"), "2"),
			chromedp.SetValue(chromedp.ID("limit"), "2000"),
			chromedp.SetValue(chromedp.ID("activate"), "never"),
			chromedp.Click(chromedp.ID("start")))
		b.waitFor(t, "the job to start", `document.getElementById("job-status").textContent.startsWith("Job ")`, 10*time.Second)
		status := b.waitFor(t, "the job to finish", `/succeeded|failed|cancelled/.test(document.getElementById("job-status").className) &&
			document.getElementById("job-status").textContent`, testwait.Timeout(t))
		t.Logf("job: %s", status)
		if !strings.Contains(status, "succeeded") {
			t.Fatalf("the job ended: %s", status)
		}
		figures := eval[[]int](t, b, `[
			document.querySelectorAll("#loss-chart circle.dot-loss").length,
			document.querySelectorAll("#loss-chart polyline").length,
			document.querySelectorAll("#acc-chart circle.dot-train").length,
			document.querySelectorAll("#acc-chart circle.dot-val").length,
			document.querySelectorAll("#history tbody tr").length,
			Math.round(document.getElementById("job-progress").value * 100)]`)
		if want := []int{2, 1, 2, 2, 2, 100}; fmt.Sprint(figures) != fmt.Sprint(want) {
			t.Errorf("loss dots, loss lines, training and validation accuracy dots, history rows, progress %%: %v; want %v", figures, want)
		}
		version := b.waitFor(t, "the new version in the list", `(() => {
			const row = [...document.querySelectorAll("#models tbody tr[data-version]")].find((r) => r.dataset.version !== "`+def.Version+`");
			return row && row.dataset.version; })()`, 10*time.Second)
		b.screenshot(t, artifacts, "3-trained")

		b.do(t, "activating "+version, chromedp.Click(chromedp.CSS(`#models button[data-version="`+version+`"]`)))
		b.waitFor(t, "the new version serving", `document.querySelector('#models tr[data-version="`+version+`"] .badge') &&
			document.getElementById("serving-version").textContent.includes("`+version+`")`, 10*time.Second)
		b.do(t, "rolling back to "+def.Version, chromedp.Click(chromedp.CSS(`#models button[data-version="`+def.Version+`"]`)))
		b.waitFor(t, "the default version serving again", `document.querySelector('#models tr[data-version="`+def.Version+`"] .badge') &&
			document.getElementById("serving-version").textContent.includes("`+def.Version+`")`, 10*time.Second)
		b.screenshot(t, artifacts, "4-rolled-back")
		if got := eval[string](t, b, `sessionStorage.getItem("perceptron.adminToken") + "|" + localStorage.length + "|" + document.cookie`); got != adminToken+"|0|" {
			t.Errorf("token storage: %q; want it in sessionStorage only", got)
		}
	})

	t.Run("the version list says where each version came from", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("model", "torch.onnx")
		fw.Write(onnxtest.MLP(1, 784, 8, 10))
		mw.WriteField("name", def.Name) // a version of the model the page shows the versions of
		mw.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/models", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var imported struct{ Version string }
		json.NewDecoder(resp.Body).Decode(&imported)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /models: %d", resp.StatusCode)
		}
		b.do(t, "refreshing the versions", chromedp.Click(chromedp.ID("refresh-models")))
		got := b.waitFor(t, "the imported version", `(() => {
			const row = document.querySelector('#models tr[data-version="`+imported.Version+`"]');
			return row && [row.querySelector(".origin").textContent,
				document.querySelector('#models tr[data-version="`+def.Version+`"] .origin').textContent].join("|"); })()`, 10*time.Second)
		if want := "imported from ONNX (onnxtest, opset 17)|built in"; got != want {
			t.Errorf("origins of the imported and the default version: %q; want %q", got, want)
		}
	})

	t.Run("a running job shows live curves and can be cancelled", func(t *testing.T) {
		b.do(t, "starting a longer job",
			chromedp.SetValue(chromedp.ID("hidden"), "32"),
			chromedp.SetValue(chromedp.ID("epochs"), "300"), // minutes of work: it must still run when cancelled
			chromedp.SetValue(chromedp.ID("limit"), "0"),
			chromedp.Click(chromedp.ID("start")))
		b.waitFor(t, "two epochs", `document.getElementById("job-status").className.includes("running") &&
			document.querySelectorAll("#loss-chart circle.dot-loss").length >= 2 && "yes"`, testwait.Timeout(t))
		b.screenshot(t, artifacts, "5-training")
		b.do(t, "cancelling", chromedp.Click(chromedp.ID("cancel")))
		status := b.waitFor(t, "the job to end", `/succeeded|failed|cancelled/.test(document.getElementById("job-status").className) &&
			document.getElementById("job-status").textContent`, testwait.Timeout(t))
		if !strings.Contains(status, "cancelled") {
			t.Errorf("after Cancel the job says %q; want cancelled", status)
		}
	})

	t.Run("an error from the API is shown as a sentence", func(t *testing.T) {
		b.do(t, "entering a wrong token",
			chromedp.Click(chromedp.ID("forget-token")),
			chromedp.SendKeys(chromedp.ID("token"), "wrong"),
			chromedp.Click(chromedp.ID("use-token")))
		msg := b.waitFor(t, "the error", `!document.getElementById("admin-error").hidden && document.getElementById("admin-error").textContent`, 10*time.Second)
		if !strings.Contains(msg, "admin token was refused (401)") {
			t.Errorf("wrong token: the page says %q; want it to say the token was refused", msg)
		}
		if eval[bool](t, b, `!document.getElementById("train-fields").disabled`) {
			t.Error("the training form is still enabled after the token was refused")
		}
	})

	t.Run("on a phone the page fits the screen", func(t *testing.T) {
		b.viewport = viewport{width: 390, height: 844, scale: 2}
		b.do(t, "narrowing the screen", b.viewport.emulate(b.viewport.height))
		b.do(t, "reloading", chromedp.Navigate(srv.URL+"/"))
		b.waitFor(t, "the page", `document.getElementById("serving-version").textContent.includes("`+def.Version+`")`, 10*time.Second)
		b.draw(t, skeletonStrokes(digits.Image(firstOf(t, digits, 7)), digits.Cols, digits.Rows), touch)
		if r := b.result(t); r.Label != "7" {
			t.Errorf("drew a 7 on a phone: the page shows %q", r.Label)
		}
		if w := eval[float64](t, b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %v px wide on a 390 px screen; want no sideways scrolling", w)
		}
		b.screenshot(t, artifacts, "6-phone")
	})

	// Nothing the page asked for went anywhere but the test server, and nothing went wrong in it.
	b.mu.Lock()
	defer b.mu.Unlock()
	own, _ := url.Parse(srv.URL)
	predicts := 0
	for _, r := range b.requests {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "blob" && u.Scheme != "data" && u.Host != own.Host) {
			t.Errorf("the page requested %s, which is not the server's own origin", r.URL)
		}
		if u != nil && u.Path == "/predict" {
			predicts++
		}
	}
	if predicts == 0 {
		t.Error("the page never called /predict")
	}
	for _, p := range b.problems {
		t.Errorf("browser console: %s", p)
	}
	t.Logf("%d requests from the page, %d of them predictions; %v in all", len(b.requests), predicts, time.Since(start).Round(time.Millisecond))
}
