package web

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/", nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHandlerServesThePageWithAStrictPolicy(t *testing.T) {
	resp, body := get(t, Handler(), http.MethodGet, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Content-Type %q; want %q", got, want)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q; want nosniff", got)
	}
	if !strings.HasPrefix(body, "<!doctype html>") || !strings.Contains(body, "Try it") || !strings.Contains(body, "Train it") {
		t.Errorf("body does not look like the page:\n%.300s", body)
	}

	csp := resp.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"connect-src":     "'self'",
		"img-src":         "'self' blob: data:",
		"base-uri":        "'none'",
		"form-action":     "'none'",
		"frame-ancestors": "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("CSP %s is %q; want %q (policy %q)", name, got, want, csp)
		}
	}
	for _, name := range []string{"script-src", "style-src"} {
		if v := directives[name]; !regexp.MustCompile(`^'sha256-[A-Za-z0-9+/]{43}='$`).MatchString(v) {
			t.Errorf("CSP %s is %q; want exactly one sha256 hash source, no 'unsafe-inline' and no host", name, v)
		}
	}

	// Each inline block is the one the policy allows, byte for byte, and there is no other.
	for _, c := range []struct{ tag, directive string }{{"script", "script-src"}, {"style", "style-src"}} {
		blocks := regexp.MustCompile(`(?s)<`+c.tag+`>(.*?)</`+c.tag+`>`).FindAllStringSubmatch(body, -1)
		if len(blocks) != 1 {
			t.Errorf("%d <%s> blocks; want 1", len(blocks), c.tag)
			continue
		}
		sum := sha256.Sum256([]byte(blocks[0][1]))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; directives[c.directive] != want {
			t.Errorf("the <%s> block hashes to %s; the policy allows %s", c.tag, want, directives[c.directive])
		}
	}
	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("%d script elements; want the one inline script", n)
	}
	if regexp.MustCompile(`(?i)\son[a-z]+\s*=`).MatchString(body) || strings.Contains(body, " style=\"") {
		t.Error("the page has inline event handlers or style attributes, which its policy blocks")
	}
}

func TestPageReferencesOnlyItsOwnOrigin(t *testing.T) {
	_, body := get(t, Handler(), http.MethodGet, nil)
	// Namespace names look like URLs but are never fetched.
	namespaces := map[string]bool{"http://www.w3.org/2000/svg": true}
	for _, u := range regexp.MustCompile(`(?i)\b(?:https?|wss?|ftp):(?://)?[^\s"'<>)\x60]*`).FindAllString(body, -1) {
		if !namespaces[u] {
			t.Errorf("the page refers to %q; it must use only its own origin", u)
		}
	}
	if strings.Contains(body, "//cdn") || regexp.MustCompile(`["'(]//[a-z0-9]`).MatchString(body) {
		t.Error("the page has a protocol-relative URL to another host")
	}
	for _, m := range regexp.MustCompile(`\s(?:src|href|action)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		// "data:," is the empty favicon, so the browser asks for no /favicon.ico.
		if ref := m[1]; !strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "#") && ref != "data:," {
			t.Errorf("reference %q is neither a same-origin path nor a fragment", ref)
		}
	}
	for _, m := range regexp.MustCompile(`(?:fetch|api)\(\s*"[A-Z]*"?,?\s*[\x60"]([^\x60"]*)`).FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[1], "/") {
			t.Errorf("the script requests %q; want a same-origin path", m[1])
		}
	}
}

func TestHandlerRevalidatesAndAnswersHead(t *testing.T) {
	h := Handler()
	resp, _ := get(t, h, http.MethodGet, nil)
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q; want an ETag and no-cache", etag, resp.Header.Get("Cache-Control"))
	}
	resp, body := get(t, h, http.MethodGet, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match with the ETag: status %d with %d bytes; want 304 and none", resp.StatusCode, len(body))
	}
	resp, body = get(t, h, http.MethodHead, nil)
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD: status %d, %d bytes, CSP %q; want 200, no body, the policy", resp.StatusCode, len(body),
			resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = get(t, h, http.MethodPost, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d; want 405", resp.StatusCode)
	}
}

func TestBuildKeepsThePageInOneDocument(t *testing.T) {
	p, err := build()
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{styleMarker, scriptMarker} {
		if strings.Contains(string(p.html), marker) {
			t.Errorf("the page still holds %s", marker)
		}
	}
	if strings.Contains(string(p.html), "innerHTML") || strings.Contains(string(p.html), "insertAdjacentHTML") {
		t.Error("the script assigns HTML strings; the policy's require-trusted-types-for would block them")
	}
}
