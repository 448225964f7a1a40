package api

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"
)

// TestImageBodiesAreReadWhateverTheirGenericType sends image bytes as clients do without naming their type
// (application/octet-stream, or curl's default for --data-binary): they are classified as with an image type, and a
// body of those types that is no image is refused with a 415 that says how to send one.
func TestImageBodiesAreReadWhateverTheirGenericType(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	pngBytes, label := digitPNG(t, 0)
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, img, &jpeg.Options{Quality: 95})
	for _, tt := range []struct {
		name, contentType string
		body              []byte
		status            int
		detail            string
	}{
		{"a PNG as application/octet-stream is classified", "application/octet-stream", pngBytes, 200, ""},
		{"a JPEG as application/octet-stream is classified", "application/octet-stream", jpg.Bytes(), 200, ""},
		{"a PNG as curl's application/x-www-form-urlencoded is classified", "application/x-www-form-urlencoded", pngBytes, 200, ""},
		{"a real form is refused, saying how to send an image", "application/x-www-form-urlencoded", []byte("image=seven.png"), 415, "is not a PNG, JPEG"},
		{"text as application/octet-stream is refused", "application/octet-stream", []byte("seven"), 415, "send an image"},
		{"a broken PNG as application/octet-stream is undecodable", "application/octet-stream", pngBytes[:40], 422, "not a decodable image"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv.URL+"/predict", tt.contentType, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s; want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status != 200 {
				if !strings.Contains(string(body), tt.detail) {
					t.Errorf("%s; want a detail saying %q", body, tt.detail)
				}
				return
			}
			var out predictResponse
			if err := json.Unmarshal(body, &out); err != nil || len(out.Predictions) != 1 || out.Predictions[0].Index != label {
				t.Errorf("%s; want one prediction of %d", body, label)
			}
		})
	}
}

// TestMultipartWithoutAnImagePartNamesTheFieldItWants uploads files under other field names, as forms made for
// other services do: the 400 says which field it wants and which it got.
func TestMultipartWithoutAnImagePartNamesTheFieldItWants(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	img, _ := digitPNG(t, 0)
	for _, tt := range []struct {
		name  string
		parts map[string][][]byte
		want  []string
	}{
		{"a file named file", map[string][][]byte{"file": {img}}, []string{`named "image"`, `"file"`}},
		{"two other fields", map[string][][]byte{"upload": {img}, "digit": {img}}, []string{`named "image"`, `"upload"`, `"digit"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.parts)
			resp, got := post(t, srv.URL+"/predict", ct, body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s; want 400", resp.StatusCode, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), strings.ReplaceAll(w, `"`, `\"`)) {
					t.Errorf("%s; want it to say %s", got, w)
				}
			}
		})
	}
}
