// Reading /predict's inputs: the body in any accepted form, image by image within the memory budget.

package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// readInputs turns the body into input rows in b for a model that takes in, whatever form the body has. The body's
// bytes are reserved in hold as they arrive; each image's decoding reserves its own memory while it runs. (The caller
// provides b so that it can live on the caller's stack.)
func (s *Server) readInputs(ctx context.Context, r *http.Request, in model.Input, hold *membudget.Hold, b *batchInput) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return errorf(KindUnsupported, "missing Content-Type: send multipart/form-data, an image type, or application/json")
	}
	mt := "multipart/form-data"
	var err error
	boundary, ok := formBoundary(ct)
	if !ok {
		var params map[string]string
		if mt, params, err = mime.ParseMediaType(ct); err != nil {
			return errorf(KindInvalid, "malformed Content-Type")
		}
		boundary = params["boundary"]
	}
	buf := inputPool.Get().(*[]float32)
	*b = batchInput{size: in.Size(), x: (*buf)[:0], pooled: buf}
	switch {
	case mt == "multipart/form-data":
		if boundary == "" {
			return errorf(KindInvalid, "multipart/form-data without a boundary")
		}
		err = s.readFormData(ctx, r, boundary, in, b, hold)
	case rawImageTypes[mt] || sniffedTypes[mt]:
		var data []byte
		if data, err = readBody(r.Body, r.ContentLength, s.cfg.MaxBodyBytes, hold); err == nil {
			if err = notAnImage(mt, data); err == nil {
				err = s.addImage(ctx, b, data, in, func() string { return "the body" })
			}
		}
	case mt == "application/json":
		err = s.readJSON(ctx, r, in, b, hold)
	default:
		return errorf(KindUnsupported, fmt.Sprintf("unsupported Content-Type %q: send multipart/form-data, image/png, image/jpeg, image/gif, image/bmp, image/tiff, image/webp, application/octet-stream (image bytes) or application/json", mt))
	}
	if err != nil {
		return bodyError(err)
	}
	if b.n == 0 {
		return errorf(KindInvalid, "no images in the request")
	}
	return nil
}

// bodyError maps errors of reading the body to their kinds: over the size limit is 413, a broken stream 400.
func bodyError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("the body is larger than %d bytes", mbe.Limit), Err: err}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &Error{Kind: KindSlow, Detail: "the body arrived too slowly (READ_TIMEOUT)", Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Kind: KindInvalid, Detail: "the body ended early", Err: err}
	}
	// Anything else is the connection failing; its message would show our addresses.
	return &Error{Kind: KindInvalid, Detail: "could not read the body", Err: err}
}

// partPool recycles the buffer the image parts of a multipart body are read into, one part after the other.
var partPool = sync.Pool{New: func() any { b := make([]byte, 0, firstChunk); return &b }}

// readFormData reads a multipart/form-data body. One of a small declared length is read into memory first and, when
// it is in the plain shape clients send (formScanner), its parts are used where they lie: mime/multipart would
// allocate a 4 KiB buffer, a header map and a copy of each part for every request. Any other body goes to
// mime/multipart, fed the same bytes, and the same read error after them, that it would have read from the stream.
func (s *Server) readFormData(ctx context.Context, r *http.Request, boundary string, in model.Input, b *batchInput, hold *membudget.Hold) error {
	n := r.ContentLength
	if n <= 0 || n >= firstChunk || len(boundary) > maxBoundary || hold.Grow(n+1+partsBytes(n)) != nil {
		return s.readMultipart(ctx, r.Body, boundary, in, b)
	}
	scratch := partPool.Get().(*[]byte)
	if int64(cap(*scratch)) <= n {
		*scratch = make([]byte, 0, firstChunk)
	}
	body := (*scratch)[: 0 : n+1] // one byte more than declared, to see the end
	var rerr error
	for len(body) < cap(body) {
		var k int
		k, rerr = r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+k]
		if rerr != nil {
			break
		}
	}
	if rerr == io.EOF {
		var kept [keptParts]formPart // the parts of a form of a few images, without an allocation
		if parts, ok := scanForm(body, boundary, kept[:0]); ok {
			err := s.readForm(ctx, parts, in, b)
			if err == nil { // else an image may still be decoding from the buffer (see readMultipart)
				partPool.Put(scratch)
			}
			return err
		}
	}
	src := io.Reader(bytes.NewReader(body))
	switch {
	case rerr == nil: // more than declared: the rest is still to read
		src = io.MultiReader(src, r.Body)
	case rerr != io.EOF:
		src = io.MultiReader(src, errorReader{rerr})
		if ctx.Err() != nil {
			// net/http cancels a request's context when reading its connection fails, so a body that broke off
			// has cancelled the decoding of its images before any began, where a stream reaches them first; their
			// answer would be a 503 that asks the client to retry a broken request. The bytes and the failure
			// are answer enough.
			return brokenForm(multipart.NewReader(src, boundary), rerr)
		}
	}
	return s.readMultipart(ctx, src, boundary, in, b)
}

// brokenForm is the answer to a form whose body failed with rerr after the bytes mr reads: readMultipart's answer for
// a malformed body or a part cut off, without decoding any image, or rerr when the form ended before the failure.
func brokenForm(mr *multipart.Reader, rerr error) error {
	var others []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return rerr
		}
		if err != nil {
			return nextPartError(err, rerr)
		}
		if part.FormName() != "image" {
			part.Close()
			if others, err = otherPart(others, part.FormName()); err != nil {
				return err
			}
			continue
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return err
		}
	}
}

// errorReader fails every read with err: a body's read error replayed after the bytes that came before it.
type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// readForm reads the image parts among parts, all of a form that scanForm read, as readMultipart reads them.
func (s *Server) readForm(ctx context.Context, parts []formPart, in model.Input, b *batchInput) error {
	var others []string
	for _, p := range parts {
		if string(p.name) != "image" {
			var err error
			if others, err = otherPart(others, string(p.name)); err != nil {
				return err
			}
			continue
		}
		if err := s.addImage(ctx, b, p.content, in, func() string { return imagePartName(fileBase(p.filename), b.n) }); err != nil {
			return err
		}
	}
	if b.n == 0 && len(others) > 0 {
		return noImagePart(others)
	}
	return nil
}

// fileBase is the file name mime/multipart's FileName gives for a filename parameter: its last element, or "".
func fileBase(f []byte) string {
	if len(f) == 0 {
		return ""
	}
	return filepath.Base(string(f))
}

// otherPart adds the quoted name of a part that is not an image to others, and refuses a form with more than
// maxExtraParts of them.
func otherPart(others []string, name string) ([]string, error) {
	if others = append(others, strconv.Quote(truncate(name, 32))); len(others) > maxExtraParts {
		return others, errorf(KindInvalid, fmt.Sprintf("more than %d parts that are not named image", maxExtraParts))
	}
	return others, nil
}

// noImagePart is the answer to a form with parts, none of them named image; others are their quoted names.
func noImagePart(others []string) error {
	return errorf(KindInvalid, "no part named \"image\": send each image as a file part named image "+
		"(curl -F image=@digit.png); the request has parts named "+strings.Join(others, ", "))
}

// readMultipart reads the image parts of mr (built from the Content-Type already parsed, so it is not parsed twice).
func (s *Server) readMultipart(ctx context.Context, src io.Reader, boundary string, in model.Input, b *batchInput) error {
	body := &readRecorder{r: src}
	mr := multipart.NewReader(body, boundary)
	// Each part is read into scratch and prepared before the next is read. The buffer goes back to the pool only when
	// every part was read without an error: an image still being decoded on a goroutine of its own when the request
	// gave up (see prepare) may still be reading it.
	scratch := partPool.Get().(*[]byte)
	var others []string // names of the parts that are not images, to say what the request held
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			partPool.Put(scratch)
			if b.n == 0 && len(others) > 0 {
				return noImagePart(others)
			}
			return nil
		}
		if err != nil {
			return nextPartError(err, body.err)
		}
		if part.FormName() != "image" {
			part.Close()
			if others, err = otherPart(others, part.FormName()); err != nil {
				return err
			}
			continue
		}
		partHold := s.memory.Hold()
		data, err := readBodyInto(*scratch, part, -1, s.cfg.MaxBodyBytes, partHold)
		part.Close()
		if err == nil {
			err = s.addImage(ctx, b, data, in, func() string { return partName(part, b.n) })
		}
		partHold.Release()
		if err != nil {
			return err
		}
	}
}

// nextPartError is the answer to mime/multipart's failure to find the next part. When reading the body failed
// (cause, from a readRecorder) that failure is the answer, as bodyError tells it: mime/multipart reports some of them
// only as the part header they cut short ("malformed MIME header"), where the client needs to hear that its body was
// too slow or too large, and a connection's error would show its addresses. Over the size limit is a 413 as
// bodyError makes it; anything else is a malformed body.
func nextPartError(err, cause error) error {
	if cause != nil {
		return bodyError(cause)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return bodyError(err)
	}
	return &Error{Kind: KindInvalid, Detail: "malformed multipart body: " + err.Error(), Err: err}
}

// readRecorder reads r and keeps the first error other than io.EOF that a read returned.
type readRecorder struct {
	r   io.Reader
	err error
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

func partName(p *multipart.Part, i int) string { return imagePartName(p.FileName(), i) }

// imagePartName names the i-th image (from 0) of a form, with its file name f when it has a short one.
func imagePartName(f string, i int) string {
	if f != "" && len(f) <= 100 {
		return fmt.Sprintf("image %d (%q)", i+1, f)
	}
	return fmt.Sprintf("image %d", i+1)
}

// addImage decodes and prepares one encoded image, or says which one failed and why; name is called only to say so.
// The memory the decoder and the preparation need is reserved first, by the image's real size in memory for its
// format and colour model; small images draw from the same budget, which never makes them queue behind large ones.
func (s *Server) addImage(ctx context.Context, b *batchInput, data []byte, in model.Input, name func() string) error {
	if b.n >= s.cfg.MaxImages {
		return errorf(KindTooLarge, fmt.Sprintf("more than %d images in one request", s.cfg.MaxImages))
	}
	if len(data) == 0 {
		return &Error{Kind: KindUnprocessable, Detail: name() + " is empty", Reason: RejectUndecodable}
	}
	start := time.Now() // of the preprocess metric's timing, and the time the deadline is checked at
	if errAt(ctx, start) != nil {
		return decodeTimeout(ctx, b.n)
	}
	lim := imageprep.Limits{MaxPixels: s.cfg.MaxPixels, MaxBytes: s.cfg.MaxBodyBytes}
	row := b.next()
	spec := prepSpec(in)
	cost, err := imageprep.EstimateCost(data, lim, spec)
	if err == nil {
		what := func() string { return fmt.Sprintf("%s (%dx%d %s)", name(), cost.Width, cost.Height, cost.Format) }
		if err := s.reserveDecode(ctx, cost.Total(), what); err != nil {
			return err
		}
		if err = s.turns.acquire(ctx, info(ctx).model); err == nil {
			err = s.prepare(ctx, row, data, lim, spec, cost.Total())
			s.turns.release()
		} else {
			s.memory.Release(cost.Total())
		}
	}
	s.metrics.preprocess.Observe(time.Since(start).Seconds())
	if err != nil {
		if err := s.imageError(ctx, b, err, data, name); err != nil {
			return err
		}
	}
	b.commit()
	return nil
}

// imageError is addImage's answer when preparing the image failed with err, or nil when err is an answer (no digit
// found), which it marks. It lives apart so that the error variable errors.As needs is allocated only on failure.
func (s *Server) imageError(ctx context.Context, b *batchInput, err error, data []byte, name func() string) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return decodeTimeout(ctx, b.n)
	case errors.Is(err, imageprep.ErrNoDigit):
		b.markNoDigit(b.n)
	case errors.Is(err, imageprep.ErrUnsupported) && strings.HasPrefix(http.DetectContentType(data), "image/"):
		// A real image in a format we do not read (an icon, say): unsupported media type.
		return &Error{Kind: KindUnsupported, Detail: name() + ": " + http.DetectContentType(data) + " is not supported; send PNG, JPEG, GIF, BMP, TIFF or WebP", Err: err}
	case errors.Is(err, imageprep.ErrUnsupported):
		return &Error{Kind: KindUnprocessable, Detail: name() + ": not a decodable image (not PNG, JPEG, GIF, BMP, TIFF or WebP)", Err: err}
	case errors.Is(err, imageprep.ErrTooLarge):
		return &Error{Kind: KindTooLarge, Detail: name() + ": " + err.Error(), Err: err}
	default:
		return &Error{Kind: KindUnprocessable, Detail: name() + ": not a decodable image: " + err.Error(), Err: err}
	}
	return nil
}

// inlineCost is the reservation below which an image is decoded on the request's goroutine: it takes milliseconds.
const inlineCost = 8 << 20

// prepare decodes and prepares data into row, and gives back the reserved bytes once the decoder is done with them.
// A large image is decoded on a goroutine of its own so the request can answer when ctx ends, since a decoder
// cannot be interrupted; the reservation stays until that goroutine finishes, because the memory is still in use.
func (s *Server) prepare(ctx context.Context, row []float32, data []byte, lim imageprep.Limits, spec imageprep.Spec, reserved int64) error {
	if reserved <= inlineCost {
		defer s.memory.Release(reserved)
		_, err := imageprep.PrepareBytes(row, data, lim, spec)
		return err
	}
	dst := make([]float32, len(row))
	done := make(chan error, 1)
	go func() {
		defer s.memory.Release(reserved)
		_, err := imageprep.PrepareBytes(dst, data, lim, spec)
		done <- err
	}()
	select {
	case err := <-done:
		copy(row, dst)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decodeTimeout is the answer when PREDICT_TIMEOUT passes while images are still being decoded.
func decodeTimeout(ctx context.Context, decoded int) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return &Error{Kind: KindUnavailable, Detail: "the request was cancelled while its images were decoded", RetryAfter: 1, Err: ctx.Err()}
	}
	return &Error{Kind: KindTimeout, Detail: fmt.Sprintf("decoding the images took longer than PREDICT_TIMEOUT (%d decoded)", decoded), Err: ctx.Err()}
}

// predictJSON is the JSON request body: exactly one of its fields.
type predictJSON struct {
	Images []string        `json:"images"` // base64 image bytes, optionally as a data: URL
	Inputs json.RawMessage `json:"inputs"` // rows of width*height values in 0..1, read by readRows
}

func (s *Server) readJSON(ctx context.Context, r *http.Request, in model.Input, b *batchInput, hold *membudget.Hold) error {
	body, err := readBody(r.Body, r.ContentLength, s.cfg.MaxBodyBytes, hold)
	if err != nil {
		return err
	}
	// Decoding copies the body into the decoder's buffer and its strings into req; each image's bytes are decoded
	// from base64 one at a time, at most three quarters of its string.
	if err := hold.Grow(2 * int64(len(body))); err != nil {
		return memoryError(err, "the JSON body")
	}
	var req predictJSON
	if err := decodeJSON(bytes.NewReader(body), &req, true); err != nil {
		return err
	}
	if string(req.Inputs) == "null" {
		req.Inputs = nil
	}
	switch {
	case req.Images != nil && req.Inputs != nil:
		return errorf(KindInvalid, `send either "images" or "inputs", not both`)
	case len(req.Images) > s.cfg.MaxImages:
		return errorf(KindTooLarge, fmt.Sprintf("more than %d images in one request", s.cfg.MaxImages))
	}
	for i, enc := range req.Images {
		if strings.HasPrefix(enc, "data:") {
			if _, after, ok := strings.Cut(enc, ";base64,"); ok {
				enc = after
			}
		}
		data, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return errorf(KindInvalid, fmt.Sprintf("images[%d] is not valid base64", i))
		}
		if err := s.addImage(ctx, b, data, in, func() string { return fmt.Sprintf("images[%d]", i) }); err != nil {
			return err
		}
	}
	if req.Inputs != nil {
		x, rows, err := readRows(req.Inputs, b.size, s.cfg.MaxImages, b.x)
		if err != nil {
			return err
		}
		first := b.n
		b.x, b.n = x, b.n+rows
		if in.Preprocess == model.PreprocessMNIST {
			b.markBlankRows(first)
		}
	}
	return nil
}
