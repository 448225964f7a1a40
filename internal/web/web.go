// Package web is the service's web page: one HTML document, embedded in the binary, where a visitor picks one of the
// served models, draws a digit or drops a photo as that model takes it and sees the prediction, and an operator with
// the admin token trains a model, follows its curves and activates or rolls back the chosen model's versions. The
// page talks only to the service's own JSON API (/v2/repository/index, /predict, /train, /models, /datasets); it has
// no build step and fetches nothing from other hosts.
//
// The page's script and style live in page/app.js and page/app.css so they can be read and linted as what they
// are; Handler inlines them into page/index.html and allows exactly those two blocks by hash in the page's
// Content-Security-Policy, so one route serves everything and no inline code but ours can run.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

//go:embed page/index.html page/app.css page/app.js
var files embed.FS

// Markers in page/index.html that Handler replaces with the inlined style and script.
const (
	styleMarker  = "<!--inline:app.css-->"
	scriptMarker = "<!--inline:app.js-->"
)

// page is the assembled document and the Content-Security-Policy that goes with it.
type page struct {
	html []byte
	csp  string
	etag string
}

// build assembles the page from the embedded files. It fails only if the embedded files are broken, which the
// package's tests rule out, so Handler panics on an error.
func build() (*page, error) {
	read := func(name string) string {
		b, err := files.ReadFile("page/" + name)
		if err != nil {
			panic(err) // the names are those of the go:embed line above
		}
		return string(b)
	}
	html, css, js := read("index.html"), read("app.css"), read("app.js")
	for _, m := range []string{styleMarker, scriptMarker} {
		if strings.Count(html, m) != 1 {
			return nil, fmt.Errorf("web: page/index.html must hold %s exactly once", m)
		}
	}
	if strings.Contains(strings.ToLower(js), "</script") || strings.Contains(strings.ToLower(css), "</style") {
		return nil, errors.New("web: page/app.js or page/app.css closes its own element")
	}
	html = strings.Replace(html, styleMarker, "<style>"+css+"</style>", 1)
	html = strings.Replace(html, scriptMarker, "<script>"+js+"</script>", 1)

	// A hash source allows exactly the inline block whose text hashes to it, byte for byte.
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src " + hashSource(js),
		"style-src " + hashSource(css),
		"img-src 'self' blob: data:", // blob: previews a chosen file; data:, is the empty favicon
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
		"require-trusted-types-for 'script'", // the script never assigns HTML strings
	}, "; ")
	sum := sha256.Sum256([]byte(html))
	return &page{html: []byte(html), csp: csp, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}, nil
}

func hashSource(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Handler serves the page on GET and HEAD, whatever the path: the router decides which path reaches it (GET /).
// The answer carries a strict Content-Security-Policy and, since the page is built into the binary, an ETag so a
// browser revalidates it cheaply.
func Handler() http.Handler {
	p, err := build()
	if err != nil {
		panic(err) // the embedded page is broken: a programmer error the package's tests catch
	}
	return p
}

// ServeHTTP implements http.Handler.
func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	// ServeContent answers If-None-Match with 304 from the ETag header, and HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.html))
}
