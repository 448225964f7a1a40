// Package apitest is a test kit for calling a running perceptron service over HTTP, as the end-to-end tests of
// package api and of the server binary do: one request with an optional bearer token and JSON body, its answer read
// whole. Only tests import it; it knows nothing of the service's packages, only of its HTTP surface.
package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Do sends a request to url with "Authorization: Bearer token" when token is not empty, and body as JSON when it is
// not empty, and returns the response, its body already read and closed, with the bytes read. A request that gets no
// response fails the test.
func Do(t testing.TB, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	contentType := ""
	if body != "" {
		contentType = "application/json"
	}
	return Send(t, method, url, token, contentType, []byte(body))
}

// Send is Do for any body: it is sent with contentType when that is not empty.
func Send(t testing.TB, method, url, token, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// JSON is Do for answers that are a JSON object: it returns the status and the object, nil when the body is not
// one (the status then says why).
func JSON(t testing.TB, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	resp, data := Do(t, method, url, token, body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}
