package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// stdParts reads body with mime/multipart the way readMultipart does, or returns the first error.
func stdParts(body []byte, boundary string) (names, files, contents []string, err error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return names, files, contents, nil
		}
		if err != nil {
			return nil, nil, nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, nil, err
		}
		names, files, contents = append(names, p.FormName()), append(files, p.FileName()), append(contents, string(data))
	}
}

// scanParts reads body with scanForm as readFormData does: nothing unless the whole body is in its shape.
func scanParts(body []byte, boundary string) (names, files, contents []string, ok bool) {
	parts, ok := scanForm(body, boundary, nil)
	if !ok {
		return nil, nil, nil, false
	}
	for _, p := range parts {
		names, files, contents = append(names, string(p.name)), append(files, fileBase(p.filename)), append(contents, string(p.content))
	}
	return names, files, contents, true
}

func formSeeds(t testing.TB) [][]byte {
	img, _ := digitPNG(t, 0)
	one, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"image", "d.png"}}, [][]byte{img})
	two, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"image", "a.png"}, {"note", ""}, {"image", "dir/b.png"}}, [][]byte{img, []byte("hi"), []byte("\r\n--b0undar")})
	return [][]byte{one, two,
		[]byte("--b0undary\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n--b0undary\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n--b0undary--"),
		[]byte("--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\"\r\nContent-Type: image/png\r\n\r\nab\r\n--b0undary--\r\nepilogue"),
		[]byte("preamble\r\n--b0undary\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nab\r\n--b0undary--"),
		[]byte("--b0undary\nContent-Disposition: form-data; name=\"image\"\n\nab\n--b0undary--"),
		[]byte("--b0undary\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nab\r\n--b0undary \r\n\r\nx\r\n--b0undary--"),
	}
}

// adversarialForms are bodies (boundary b0undary) at the edges of the scanner's shape: spellings of headers and
// parameters mime/multipart reads in more than one way, file names with paths, boundaries inside and around the
// data, padding, epilogues, missing ends, empty parts, too many fields, and sizes either side of the 64 KiB under
// which a body is read in memory.
func adversarialForms(t testing.TB) [][]byte {
	img, _ := digitPNG(t, 2)
	part := func(headers string, content []byte) []byte {
		return append([]byte("--b0undary\r\n"+headers+"\r\n\r\n"), append(slices.Clip(content), "\r\n"...)...)
	}
	form := func(end string, parts ...[]byte) []byte { return append(bytes.Join(parts, nil), "--b0undary--"+end...) }
	cd := func(params string) string { return "Content-Disposition: form-data; " + params }
	bad := []byte("not an image")
	var bodies [][]byte
	for _, h := range []string{
		"content-disposition: form-data; name=\"image\"; filename=\"q.png\"",
		cd(`name="image"; filename="q.png"`) + "\r\n" + cd(`name="other"`),
		"Content-Type: image/png\r\n" + cd(`name="image"; filename="q.png"`),
		cd(`name="image"; filename="q.png"`) + "\r\nContent-Transfer-Encoding: binary",
		cd(`name="image"; filename="q.png"`) + "\r\nContent-Type: text/plain; charset=\"utf-8\"",
		cd(`name="image"; filename="q.png"`) + "\r\nContent-Type:  image/png ",
		cd(`name=image`), cd(`name="im\\age"`), cd(`name="a\\"b"`), cd(`name=""`), cd(`name="image "`), cd(`NAME="image"`),
		cd(`name="image"; filename*=UTF-8''%C3%A9.png`), cd(`name="image";filename="q.png"`),
	} {
		bodies = append(bodies, form("\r\n", part(h, img)), form("\r\n", part(h, bad)))
	}
	for _, f := range []string{"a/b/c.png", "..", ".", "/", "a/", `C:\\dir\\x.png`, strings.Repeat("x", 100), strings.Repeat("x", 101), "sp ace;x=y.png", "\u00e9.png"} {
		bodies = append(bodies, form("", part(cd(`name="image"; filename="`+f+`"`), bad)))
	}
	img0 := cd(`name="image"; filename="d.png"`)
	withPad := func(size int) []byte {
		body := form("\r\n", part(img0, img), part(cd(`name="pad"`), nil))
		pad := bytes.Repeat([]byte{'p'}, size-len(body))
		return form("\r\n", part(img0, img), part(cd(`name="pad"`), pad))
	}
	bodies = append(bodies,
		form("", part(img0, append(slices.Clip(img), "\r\n--b0undaryxyz"...))),
		form("", part(img0, append([]byte("--b0undary\r\n"), img...))),
		form("", part(img0, append(slices.Clip(img), "\r\n--b0undaryb0undary\r\n"...))),
		bytes.Replace(form("", part(img0, img), part(img0, img)), []byte("\r\n--b0undary\r\n"), []byte("\r\n--b0undary\t\r\n"), 1),
		form("xx", part(img0, img)), form("  ", part(img0, img)), form("\r\n\r\n--b0undary\r\n", part(img0, img)),
		bytes.Join([][]byte{part(img0, img)}, nil), part(img0, img)[:len(part(img0, img))-2],
		[]byte("--b0undary\r\n\r\n\r\n--b0undary--"), []byte("--b0undary--\r\n"), []byte("--b0undary\r\n"),
		withPad(firstChunk-1), withPad(firstChunk), withPad(firstChunk+1),
	)
	var fields [][]byte
	for i := range maxExtraParts + 1 {
		fields = append(fields, part(cd(fmt.Sprintf(`name="f%d"`, i)), []byte("v")))
	}
	return append(bodies, form("", fields...), form("", append(fields[:maxExtraParts:maxExtraParts], part(img0, img))...))
}

// multipartBodyBoundary is a body mime/multipart's Writer makes with the given boundary, parts named and with file
// names as given (no file name: a plain field).
func multipartBodyBoundary(t testing.TB, boundary string, names [][2]string, data [][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		var w io.Writer
		var err error
		if n[1] != "" {
			w, err = mw.CreateFormFile(n[0], n[1])
		} else {
			w, err = mw.CreateFormField(n[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[i])
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// TestFormScannerReadsWhatClientsSend checks that the scanner takes the bodies Go's multipart.Writer makes (as
// curl and browsers do), so the fast path is the one requests take, and refuses the shapes it leaves to
// mime/multipart.
func TestFormScannerReadsWhatClientsSend(t *testing.T) {
	seeds := formSeeds(t)
	for i, want := range []bool{true, true, false, true, false, false, false} {
		names, _, contents, ok := scanParts(seeds[i], "b0undary")
		if ok != want {
			t.Errorf("seed %d: scanned %v, want %v", i, ok, want)
			continue
		}
		if !ok {
			continue
		}
		sn, _, sc, err := stdParts(seeds[i], "b0undary")
		if err != nil || len(sn) != len(names) {
			t.Fatalf("seed %d: mime/multipart: %v, %d parts, scanner %d", i, err, len(sn), len(names))
		}
		for j := range sc {
			if sc[j] != contents[j] || sn[j] != names[j] {
				t.Errorf("seed %d part %d differs", i, j)
			}
		}
	}
}

// FuzzFormScanner checks the scanner against mime/multipart: a body it takes is one mime/multipart reads without
// error into the same parts, names, file names and contents.
func FuzzFormScanner(f *testing.F) {
	for _, s := range append(formSeeds(f), adversarialForms(f)...) {
		f.Add(s, "b0undary")
	}
	f.Add([]byte("--a\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n--a--"), "a")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		names, files, contents, ok := scanParts(body, boundary)
		if !ok {
			return
		}
		sn, sf, sc, err := stdParts(body, boundary)
		if err != nil {
			t.Fatalf("scanned %d parts; mime/multipart: %v", len(names), err)
		}
		if len(sn) != len(names) {
			t.Fatalf("scanned %d parts; mime/multipart %d", len(names), len(sn))
		}
		for i := range sn {
			if sn[i] != names[i] || sf[i] != files[i] || sc[i] != contents[i] {
				t.Fatalf("part %d: scanned %q %q %q; mime/multipart %q %q %q", i, names[i], files[i], contents[i], sn[i], sf[i], sc[i])
			}
		}
	})
}

// failAfter yields data, then fails with err: a body whose connection broke.
type failAfter struct {
	data []byte
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestFormDataAnswersAsTheStreamDoes checks that /predict answers a multipart body read in memory (declared length)
// exactly as it answers the same bytes streamed without a length through mime/multipart: valid forms, forms the
// scanner leaves to mime/multipart, malformed and truncated ones, ones with no image part and bodies that break off.
func TestFormDataAnswersAsTheStreamDoes(t *testing.T) {
	h := newTestStack(t, Config{}).server
	img, _ := digitPNG(t, 1)
	bodies := formSeeds(t)
	noImage, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"note", ""}, {"other", "x.txt"}}, [][]byte{[]byte("a"), []byte("b")})
	badImage, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"image", "bad.png"}, {"image", "good.png"}}, [][]byte{[]byte("not a png"), img})
	bodies = append(bodies, noImage, badImage, bodies[0][:len(bodies[0])/2], bodies[1][:len(bodies[1])-3], []byte{}, []byte("--b0undary--"))
	bodies = append(bodies, adversarialForms(t)...)
	for i, body := range bodies {
		for _, broken := range []bool{false, true} {
			answer := func(declared bool) (int, string) {
				var src io.Reader = bytes.NewReader(body)
				if broken {
					src = &failAfter{data: body, err: io.ErrUnexpectedEOF}
				}
				if !declared {
					src = io.MultiReader(src) // hides the length: the request streams through mime/multipart
				}
				req := httptest.NewRequest(http.MethodPost, "/predict", src)
				if declared {
					req.ContentLength = int64(len(body))
				}
				req.Header.Set("Content-Type", "multipart/form-data; boundary=b0undary")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w.Code, w.Body.String()
			}
			code, got := answer(true)
			wantCode, want := answer(false)
			if code != wantCode || got != want {
				t.Errorf("body %d broken=%v: in memory %d %s; streamed %d %s", i, broken, code, got, wantCode, want)
			}
		}
	}
}

// FuzzFormBoundary checks formBoundary against mime.ParseMediaType: a Content-Type it reads is multipart/form-data
// with that boundary and nothing else for mime.ParseMediaType too.
func FuzzFormBoundary(f *testing.F) {
	for _, ct := range []string{"multipart/form-data; boundary=b0undary", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
		"multipart/form-data; boundary=\"a b\"", "Multipart/Form-Data; boundary=x", "multipart/form-data; boundary=x; charset=utf-8",
		"multipart/form-data; boundary=", "multipart/form-data; boundary=a\x00"} {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		b, ok := formBoundary(ct)
		if !ok {
			return
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "multipart/form-data" || len(params) != 1 || params["boundary"] != b {
			t.Fatalf("%q: boundary %q; mime.ParseMediaType: %q %v %v", ct, b, mt, params, err)
		}
	})
}

// TestFormBoundaryReadsWhatClientsSend checks that formBoundary takes the Content-Type of Go's multipart.Writer and
// of browsers, and leaves other spellings to mime.ParseMediaType.
func TestFormBoundaryReadsWhatClientsSend(t *testing.T) {
	_, ct := multipartBodyBoundary(t, "b0undary", nil, nil)
	for c, want := range map[string]bool{ct: true, "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW": true,
		"multipart/form-data; boundary=\"quoted\"": false, "multipart/form-data;boundary=x": false, "multipart/form-data; boundary=x;": false} {
		if _, ok := formBoundary(c); ok != want {
			t.Errorf("%q: read %v, want %v", c, ok, want)
		}
	}
}

// TestFormDataShorterThanDeclaredIsTheClients sends, over a real connection, multipart bodies that end (the client
// closes its side) before their declared Content-Length. net/http cancels a request's context when reading its
// connection fails, so a body read in memory has its context cancelled before any image is decoded: the answer must
// still be the 400 of a body that broke off (what mime/multipart says of the bytes, as the stream would answer), never
// the 503 of a cancelled decoding, which would tell the client to retry the same broken request.
func TestFormDataShorterThanDeclaredIsTheClients(t *testing.T) {
	ts := newTestStack(t, Config{})
	img, _ := digitPNG(t, 1)
	full, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"image", "d.png"}}, [][]byte{img})
	bad, _ := multipartBodyBoundary(t, "b0undary", [][2]string{{"image", "bad.png"}, {"image", "d.png"}}, [][]byte{[]byte("not a png"), img})
	// streamed is the answer to body read through mime/multipart from a stream that breaks off after it.
	streamed := func(body []byte) string {
		req := httptest.NewRequest(http.MethodPost, "/predict", &failAfter{data: body, err: io.ErrUnexpectedEOF})
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b0undary")
		w := httptest.NewRecorder()
		ts.server.ServeHTTP(w, req)
		var p struct{ Detail string }
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != http.StatusBadRequest {
			t.Fatalf("streamed %q: %d %s", body, w.Code, w.Body)
		}
		return p.Detail
	}
	for _, tt := range []struct {
		name   string
		body   []byte
		detail string
	}{
		{"before the final boundary's line end", full[:len(full)-2], streamed(full[:len(full)-2])},
		{"inside the image", full[:len(full)/2], streamed(full[:len(full)/2])},
		{"after a bad image, in the next part", bad[:len(bad)-20], "the body ended early"},
		{"in the epilogue, the form complete", append(slices.Clip(full), "epilogue"...), "the body ended early"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			head := fmt.Sprintf("POST /predict HTTP/1.1\nHost: test\nContent-Type: multipart/form-data; boundary=b0undary\nContent-Length: %d", len(tt.body)+100)
			c, br := rawRequest(t, ts.srv.URL, head, string(tt.body))
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct{ Detail string }
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || p.Detail != tt.detail {
				t.Errorf("%d %q, want 400 %q", resp.StatusCode, p.Detail, tt.detail)
			}
		})
	}
}

// TestTokenByteIsTheSeparatorRule checks the table formBoundary reads against the rule it stands for, byte by byte.
func TestTokenByteIsTheSeparatorRule(t *testing.T) {
	for c := range 256 {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
		if tokenByte[c] != want {
			t.Errorf("tokenByte[%q] = %v; want %v", rune(c), tokenByte[c], want)
		}
	}
}

// TestPartsBytesCoversTheSmallestParts checks the reservation readFormData makes for a form's parts against forms of
// the smallest parts the scanner takes: what the kept parts do not hold must fit in it.
func TestPartsBytesCoversTheSmallestParts(t *testing.T) {
	for _, n := range []int{1, keptParts, keptParts + 1, 100, 1000} {
		var body strings.Builder
		for range n {
			body.WriteString("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n")
		}
		body.WriteString("--b--\r\n")
		parts, ok := scanForm([]byte(body.String()), "b", nil)
		if !ok || len(parts) != n {
			t.Fatalf("%d parts: scanned %d, ok %v", n, len(parts), ok)
		}
		need := int64(max(len(parts)-keptParts, 0)) * int64(unsafe.Sizeof(formPart{}))
		if got := partsBytes(int64(body.Len())); got < need {
			t.Errorf("%d parts in %d bytes: partsBytes %d, the parts beyond the kept ones take %d", n, body.Len(), got, need)
		}
	}
}
