package api

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// rawImageTypes are the Content-Types accepted as a raw image body.
var rawImageTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/bmp": true, "image/tiff": true, "image/webp": true,
}

// sniffedTypes are the Content-Types of bodies that may be an image without saying so: application/octet-stream,
// and application/x-www-form-urlencoded, which curl sends for --data-binary unless told otherwise. Such a body is
// read as an image when its bytes are one of the formats we read, and refused with 415 otherwise.
var sniffedTypes = map[string]bool{"application/octet-stream": true, "application/x-www-form-urlencoded": true}

// maxExtraParts bounds the multipart parts that are not images, so a request cannot make us walk thousands of them.
const maxExtraParts = 16

// batchInput is a request's images, each already turned into the model's input vector.
type batchInput struct {
	x      []float32 // n rows of width*height values
	n      int
	size   int        // values per row
	pooled *[]float32 // where x came from, to give it back
	// noDigit marks the rows in which preprocessing found no digit (see markNoDigit); nil when there are none.
	noDigit []bool
}

// release returns the input buffer to the pool. Call it only when nothing can read x any more.
func (b *batchInput) release() {
	if b.pooled != nil && cap(b.x) <= 64<<10 {
		*b.pooled = b.x[:0]
		inputPool.Put(b.pooled)
	}
	b.pooled = nil
}

// next returns room for one more row at the end of x, growing it when needed; the row counts once commit is called.
func (b *batchInput) next() []float32 {
	b.x = slices.Grow(b.x, b.size)
	return b.x[len(b.x) : len(b.x)+b.size]
}

func (b *batchInput) commit() { b.x = b.x[:len(b.x)+b.size]; b.n++ }

// responsePool recycles the buffers /predict answers are written into; the ResponseWriter copies what it is given.
var responsePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// inputPool recycles the input matrices of /predict: at thousands of requests a second they would otherwise be most
// of the garbage. A buffer goes back only after the engine has answered, when no worker can still be reading it.
var inputPool = sync.Pool{New: func() any { return new([]float32) }}

func (s *Server) handlePredict() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var q url.Values // nil reads as empty: most requests have no query, and parsing "" still makes a map
		if r.URL.RawQuery != "" {
			q = r.URL.Query()
		}
		if len(q["top_k"]) > 1 {
			s.fail(w, r, errorf(KindInvalid, "top_k is given more than once"))
			return
		}
		topK, err := parseTopK(q.Get("top_k"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(q["min_confidence"]) > 1 {
			s.fail(w, r, errorf(KindInvalid, "min_confidence is given more than once"))
			return
		}
		minConf, minGiven, err := parseMinConfidence(q.Get("min_confidence"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		debug, err := parseDebug(q["debug"])
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(q["model"]) > 1 {
			s.fail(w, r, errorf(KindInvalid, "model is given more than once"))
			return
		}
		net := s.engine.Model()
		if name := q.Get("model"); s.cfg.Models != nil {
			var release func()
			if net, release, err = s.cfg.Models.Acquire(name, ""); err != nil {
				s.fail(w, r, err)
				return
			}
			defer release()
		} else if name != "" && (net == nil || name != net.Name) {
			s.fail(w, r, errorf(KindNotFound, "model "+strconv.Quote(truncate(name, 64))+" is not served here"))
			return
		}
		if net == nil {
			s.fail(w, r, &Error{Kind: KindUnavailable, Detail: "no model loaded", RetryAfter: 5, Reason: RejectNoModel})
			return
		}
		st := stateOf(r.Context())
		info(r.Context()).model = net.Name
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		// PREDICT_TIMEOUT covers decoding as well as inference: a request of many large images ends near it.
		ctx := predictDeadline(r, s.cfg.PredictTimeout)
		defer ctx.stop()
		var hold *membudget.Hold // the body and what its parsing holds, until the answer is written
		if st != nil {
			hold = s.memory.HoldIn(&st.hold)
		} else {
			hold = s.memory.Hold()
		}
		defer hold.Release()
		var in batchInput
		if err := s.readInputs(ctx, r, net.Input, hold, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		info(r.Context()).images = in.n

		res, err := s.engine.PredictOn(ctx, net, in.x, in.n, in.size)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		th := threshold(res.Model, minConf, minGiven)
		s.metrics.countAnswers(res, in.noDigit, th)
		var dbg []float32
		if debug {
			dbg = in.x
		}
		buf := responsePool.Get().(*[]byte)
		body := appendPredictResponse((*buf)[:0], s.labels.quoted(res.Model), res, in.noDigit, th, topK, dbg, in.size)
		// The engine has answered, so no worker holds the inputs any more.
		in.release()
		var vals *[2]string
		if st != nil {
			vals = &st.json
		}
		setJSONLength(w.Header(), len(body), vals)
		w.Write(body)
		if cap(body) <= 64<<10 { // a debug answer's buffer is not worth keeping
			*buf = body
			responsePool.Put(buf)
		}
	}
}

// setJSONLength sets Content-Type: application/json and Content-Length: n as Header.Set would, with the keys already
// in canonical form and both values in v, or in one allocation when v is nil. Each value's slice is capped at its
// length, so an Add to either header copies it rather than writing over the other's.
func setJSONLength(h http.Header, n int, v *[2]string) {
	if v == nil {
		v = new([2]string)
	}
	*v = [2]string{"application/json", lengthString(n)}
	h["Content-Type"], h["Content-Length"] = v[0:1:1], v[1:2:2]
}

// threeDigits and fourDigits are the decimal numbers of three and of four digits written one after the other, so
// that lengthString can answer the Content-Length of almost every answer with a piece of one of them rather than a
// new string.
var threeDigits, fourDigits = digitRun(100, 1000), digitRun(1000, 10000)

// digitRun writes the numbers from lo up to hi, all of the same number of digits, one after the other.
func digitRun(lo, hi int) string {
	w := len(strconv.Itoa(lo))
	b := make([]byte, 0, (hi-lo)*w)
	for i := lo; i < hi; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
	}
	return string(b)
}

// lengthString is strconv.Itoa(n), without allocating for n below 10000 (strconv has those below 100).
func lengthString(n int) string {
	switch {
	case n >= 100 && n < 1000:
		i := (n - 100) * 3
		return threeDigits[i : i+3]
	case n >= 1000 && n < 10000:
		i := (n - 1000) * 4
		return fourDigits[i : i+4]
	}
	return strconv.Itoa(n)
}

func parseTopK(s string) (int, error) {
	if s == "" {
		return 3, nil
	}
	k, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' {
		return math.MaxInt, nil // more than there are classes: all of them
	}
	if err != nil || k < 1 {
		return 0, errorf(KindInvalid, "top_k must be a whole number of at least 1")
	}
	return k, nil
}

// handleFloor reads every multipart part named image, as /predict does, and answers a constant prediction: the
// cost of the HTTP stack, routing, middleware and upload parsing without decoding or inference.
func (s *Server) handleFloor() http.HandlerFunc {
	const answer = `{"model":{"name":"floor","version":"0"},"predictions":[{"label":"0","index":0,"confidence":1}]}` + "\n"
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		mr, err := r.MultipartReader()
		if err != nil {
			s.fail(w, r, errorf(KindInvalid, "malformed multipart body"))
			return
		}
		images := 0
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				s.fail(w, r, bodyError(err))
				return
			}
			if part.FormName() == "image" {
				if _, err := io.ReadAll(part); err != nil {
					s.fail(w, r, bodyError(err))
					return
				}
				images++
			}
			part.Close()
		}
		info(r.Context()).images = images
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}
}

// prepSpec is what preprocessing needs to know of a model's input.
func prepSpec(in model.Input) imageprep.Spec {
	return imageprep.Spec{Width: in.Width, Height: in.Height, Mode: imageprep.Mode(in.Preprocess), Channels: in.Channels}
}

// notAnImage refuses a body sent as one of sniffedTypes whose bytes are not an image format we read; bodies sent
// with an image type go on to decoding, which says what is wrong with them.
func notAnImage(mediaType string, data []byte) error {
	if !sniffedTypes[mediaType] {
		return nil
	}
	if _, _, _, err := imageprep.DecodeConfig(data, imageprep.Limits{}); errors.Is(err, imageprep.ErrUnsupported) {
		return errorf(KindUnsupported, fmt.Sprintf("the %s body is not a PNG, JPEG, GIF, BMP, TIFF or WebP image: "+
			"send an image (with curl: --data-binary @digit.png -H 'Content-Type: image/png'), multipart/form-data or application/json", mediaType))
	}
	return nil
}

// parseDebug reads the debug parameter of /predict: absent or empty is false, else one value strconv.ParseBool
// reads (true, 1, false, 0 and their capitalised spellings). Anything else is refused rather than read as false,
// so a typo does not silently drop the input from the answer.
func parseDebug(vs []string) (bool, error) {
	switch {
	case len(vs) > 1:
		return false, errorf(KindInvalid, "debug is given more than once")
	case len(vs) == 0 || vs[0] == "":
		return false, nil
	}
	v, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, errorf(KindInvalid, fmt.Sprintf("debug must be true or false, got %q", truncate(vs[0], 32)))
	}
	return v, nil
}
