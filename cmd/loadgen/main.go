// Command loadgen sends a bounded load of /predict requests to a perceptron server on this machine and reports
// throughput, latency percentiles and errors. It only ever targets loopback addresses and always stops by itself
// (after -duration, or -requests, whichever comes first).
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080/predict -c 16 -duration 10s
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// maxDuration caps every run, whatever the flags say.
const maxDuration = 15 * time.Minute

type options struct {
	url         string
	concurrency int
	duration    time.Duration
	requests    int
	images      int
	form        string
	imageFile   string
	digit       int
	warmup      time.Duration
	jsonOut     bool
	markdown    bool
	label       string
	rate        float64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/predict", "target URL (loopback only)")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent connections")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send load (at most 15m)")
	fs.IntVar(&o.requests, "requests", 0, "stop after this many requests (0: no limit)")
	fs.IntVar(&o.images, "images", 1, "images per request")
	fs.StringVar(&o.form, "form", "multipart", "request form: multipart, raw (image/png body, one image) or json (base64)")
	fs.StringVar(&o.imageFile, "image", "", "image file to send (default: a real MNIST test digit as a 28x28 PNG)")
	fs.IntVar(&o.digit, "digit", 0, "index of the MNIST test digit to send when -image is not set")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load sent before measuring")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.markdown, "markdown", false, "print the report as one Markdown table row (see bench/run.sh)")
	fs.StringVar(&o.label, "label", "", "name of this run in the report")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: send this many requests a second on a fixed schedule, at most -c in flight, "+
		"a request sent late because all were busy counted from the moment it was due (0: closed loop, each connection sends as soon as "+
		"its last answer came)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(o.url); err != nil {
		return err
	}
	if o.concurrency < 1 || o.images < 1 || o.duration <= 0 || o.rate < 0 {
		return errors.New("-c, -images and -duration must be positive, -rate not negative")
	}
	o.duration = min(o.duration, maxDuration)
	img, err := loadImage(ctx, o)
	if err != nil {
		return err
	}
	body, contentType, err := buildBody(o, img)
	if err != nil {
		return err
	}

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		},
	}
	if o.warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, o.warmup)
		load(wctx, client, o, body, contentType, 0)
		cancel()
	}
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	rep := load(lctx, client, o, body, contentType, o.requests)
	rep.Label, rep.Concurrency, rep.ImagesPerRequest, rep.Rate = o.label, o.concurrency, o.images, o.rate
	if o.markdown {
		fmt.Fprintf(stdout, "| %s | %d | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %d |\n", rep.Label, rep.Concurrency,
			rep.ImagesPerRequest, rep.RequestsPerSec, rep.ImagesPerSec, rep.P50ms, rep.P90ms, rep.P99ms, rep.Errors)
		return nil
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	return nil
}

// checkLoopback refuses any target that is not on this machine.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not an absolute URL", raw)
	}
	host := u.Hostname()
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		if addrs, err = net.LookupHost(host); err != nil {
			return err
		}
	}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-url %q: %s is not a loopback address; loadgen only targets this machine", raw, a)
		}
	}
	return nil
}

func loadImage(ctx context.Context, o options) ([]byte, error) {
	if o.imageFile != "" {
		return os.ReadFile(o.imageFile)
	}
	dir, err := dataset.FindMNIST(ctx, "")
	if err != nil {
		return nil, err
	}
	test, err := dataset.LoadMNIST(dir, dataset.Test)
	if err != nil {
		return nil, err
	}
	if o.digit < 0 || o.digit >= test.Len() {
		return nil, fmt.Errorf("-digit %d outside 0..%d", o.digit, test.Len()-1)
	}
	g := image.NewGray(image.Rect(0, 0, test.Cols, test.Rows))
	copy(g.Pix, test.Image(o.digit))
	var b bytes.Buffer
	err = png.Encode(&b, g)
	return b.Bytes(), err
}

func buildBody(o options, img []byte) ([]byte, string, error) {
	switch o.form {
	case "raw":
		if o.images != 1 {
			return nil, "", errors.New("-form raw sends one image per request")
		}
		return img, "image/png", nil
	case "json":
		imgs := make([]string, o.images)
		for i := range imgs {
			imgs[i] = base64.StdEncoding.EncodeToString(img)
		}
		b, err := json.Marshal(map[string][]string{"images": imgs})
		return b, "application/json", err
	case "multipart":
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for i := range o.images {
			w, err := mw.CreateFormFile("image", fmt.Sprintf("digit%d.png", i))
			if err != nil {
				return nil, "", err
			}
			w.Write(img)
		}
		mw.Close()
		return b.Bytes(), mw.FormDataContentType(), nil
	}
	return nil, "", fmt.Errorf("unknown -form %q", o.form)
}

// report is what a run measured.
type report struct {
	Label            string         `json:"label,omitempty"`
	Concurrency      int            `json:"concurrency"`
	Rate             float64        `json:"rate,omitempty"`
	ImagesPerRequest int            `json:"images_per_request"`
	Seconds          float64        `json:"seconds"`
	Requests         int            `json:"requests"`
	Errors           int            `json:"errors"`
	Statuses         map[string]int `json:"statuses"`
	RequestsPerSec   float64        `json:"requests_per_second"`
	ImagesPerSec     float64        `json:"images_per_second"`
	P50ms            float64        `json:"p50_ms"`
	P90ms            float64        `json:"p90_ms"`
	P99ms            float64        `json:"p99_ms"`
	Maxms            float64        `json:"max_ms"`
}

func (r *report) print(w io.Writer) {
	codes := make([]string, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s:%d", c, r.Statuses[c]))
	}
	fmt.Fprintf(w, "%s c=%d images/request=%d: %d requests in %.1fs, %.0f req/s, %.0f images/s, p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms, errors %d [%s]\n",
		r.Label, r.Concurrency, r.ImagesPerRequest, r.Requests, r.Seconds, r.RequestsPerSec, r.ImagesPerSec,
		r.P50ms, r.P90ms, r.P99ms, r.Maxms, r.Errors, strings.Join(parts, " "))
}

// load runs o.concurrency clients until ctx ends or limit requests (0: no limit) have been sent. Closed loop
// (o.rate 0) each client sends its next request when the last one is answered, so a slower server is sent less and
// its latency understates what users would see. Open loop (o.rate > 0) request i is due at start + i/rate whatever
// the answers do, a client takes the next due request when it is free, and a request sent late because every client
// was still waiting for an answer counts its latency from the moment it was due: the server's backlog is not hidden.
func load(ctx context.Context, client *http.Client, o options, body []byte, contentType string, limit int) *report {
	type result struct {
		lat    []time.Duration
		status map[string]int
		errs   int
	}
	results := make([]result, o.concurrency)
	var (
		mu   sync.Mutex
		sent int
	)
	next := func() bool {
		if limit <= 0 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		sent++
		return sent <= limit
	}
	start := time.Now()
	var due atomic.Int64 // open loop: the index of the next request to send
	wait := func() (time.Time, bool) {
		if o.rate <= 0 {
			return time.Now(), true
		}
		at := start.Add(time.Duration(float64(due.Add(1)-1) / o.rate * float64(time.Second)))
		d := time.Until(at)
		if d <= 0 {
			return at, ctx.Err() == nil // late: every client was busy, and that wait is the server's
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			// A timer wakes up to a millisecond late when the process is idle (the poller's timeouts are in
			// milliseconds): that lateness is the load generator's, so the latency runs from the wake-up.
			return time.Now(), true
		case <-ctx.Done():
			return at, false
		}
	}
	var wg sync.WaitGroup
	for i := range o.concurrency {
		wg.Go(func() {
			res := &results[i]
			res.status = map[string]int{}
			res.lat = make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil && next() {
				t0, ok := wait()
				if !ok {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
				req.Header.Set("Content-Type", contentType)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return // the run ended mid-request; not the server's error
					}
					res.errs++
					res.status["error"]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				res.lat = append(res.lat, time.Since(t0))
				res.status[fmt.Sprint(resp.StatusCode)]++
				if resp.StatusCode != http.StatusOK {
					res.errs++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	rep := &report{Statuses: map[string]int{}, Seconds: elapsed.Seconds()}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		rep.Errors += r.errs
		for k, v := range r.status {
			rep.Statuses[k] += v
		}
	}
	slices.Sort(all)
	rep.Requests = len(all)
	ok := rep.Requests - rep.Errors + rep.Statuses["error"]
	rep.RequestsPerSec = float64(rep.Requests) / elapsed.Seconds()
	rep.ImagesPerSec = float64(ok*o.images) / elapsed.Seconds()
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(int(p*float64(len(all))), len(all)-1)]) / 1e6
	}
	rep.P50ms, rep.P90ms, rep.P99ms, rep.Maxms = pct(0.50), pct(0.90), pct(0.99), pct(1)
	return rep
}
