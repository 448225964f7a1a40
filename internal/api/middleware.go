package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/randid"
)

type ctxKey int

const requestStateKey ctxKey = 0

// requestState is what the middleware keeps of a request in its context, in one allocation: the request id, what
// handlers learn (info) and the access log's view of the response (sw), and what a prediction needs for the
// request's lifetime, so that it allocates none of it again. A requestState belongs to one request and is never
// reused, so whatever still refers to it after the request (a context, a header) reads what that request left.
type requestState struct {
	id    string
	info  requestInfo
	sw    statusWriter
	hdr   [1]string // the X-Request-Id header's value
	start time.Time // when the access log began timing the request; zero without one
	// took is the request's duration as the metrics middleware measured it from start, for the access log to print;
	// timed says it was.
	took  time.Duration
	timed bool

	deadline lazyDeadline   // /predict's PREDICT_TIMEOUT (see predictDeadline)
	hold     membudget.Hold // /predict's reservation for the body
	json     [2]string      // the Content-Type and Content-Length values of /predict's answer (see setJSONLength)
}

func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey).(*requestState)
	return st
}

// requestInfo collects facts about a request that handlers learn and the access log prints.
type requestInfo struct {
	images int
	// model is the name of the model the request is for, once known: its images are decoded in that model's turn.
	model string
	// v2 is set by the Open Inference Protocol's routes (withV2Errors): their errors are {"error": "..."}.
	v2 bool
}

// withV2Errors makes every error answered under it, its routes' own, a missing route's or a panic's, take the
// Open Inference Protocol's shape.
func withV2Errors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).v2 = true
		next.ServeHTTP(w, r)
	})
}

func requestID(ctx context.Context) string {
	if st := stateOf(ctx); st != nil {
		return st.id
	}
	return ""
}

func info(ctx context.Context) *requestInfo {
	if st, ok := ctx.Value(requestStateKey).(*requestState); ok {
		return &st.info
	}
	return &requestInfo{}
}

// validRequestID accepts a client's X-Request-Id only when it is short and plain, so logs cannot be forged or flooded.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// withRequestID takes the request id from X-Request-Id when valid, else makes one, and returns it in the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = randid.Hex(8)
		}
		st := &requestState{id: id, hdr: [1]string{id}}
		w.Header()["X-Request-Id"] = st.hdr[:] // Set, without allocating the value's slice
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestStateKey, st)))
	})
}

// statusWriter remembers the status code for the access log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routePattern returns chi's matched route pattern, a bounded label for logs and metrics.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// withRecover turns a panic into a logged 500 problem instead of a dropped connection.
func withRecover(log *zap.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic", zap.Any("value", v), zap.ByteString("stack", debug.Stack()),
						zap.String("request_id", requestID(r.Context())))
					writeError(w, r, log, fmt.Errorf("panic: %v", v))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// withAccessLog writes one line per request: id, method, route, status, duration, bytes and images. It never logs
// bodies or headers, so neither image bytes nor tokens reach the log.
func withAccessLog(log *zap.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			var sw *statusWriter
			st := stateOf(r.Context())
			if st != nil {
				st.start = start
				st.sw = statusWriter{ResponseWriter: w}
				sw = &st.sw
			} else {
				sw = &statusWriter{ResponseWriter: w}
			}
			next.ServeHTTP(sw, r)
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			if ce := log.Check(zap.InfoLevel, "request"); ce != nil {
				var took time.Duration
				if st != nil && st.timed {
					took = st.took // the metrics' reading of the same span, a moment shorter
				} else {
					took = time.Since(start)
				}
				ce.Write(
					zap.String("request_id", requestID(r.Context())),
					zap.String("method", methodLabel(r.Method)),
					zap.String("route", routePattern(r)),
					zap.Int("status", sw.status),
					zap.Duration("duration", took),
					zap.Int("bytes", sw.bytes),
					zap.Int("images", info(r.Context()).images),
				)
			}
		})
	}
}

// withDrainClose asks clients to close kept-alive connections while the server drains, so they reconnect to a
// replica that stays up instead of sending into a socket about to close.
func withDrainClose(draining func() bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining() {
				w.Header().Set("Connection", "close")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withMetrics records each request's duration by route pattern, method and status code, and the requests in flight.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		// Under the access log the request's start has been read already: both time the same span.
		st := stateOf(r.Context())
		var start time.Time
		if st != nil && !st.start.IsZero() {
			start = st.start
		} else {
			start = time.Now()
		}
		// Under the access log the writer already records what this needs (the status); a second one would be a
		// second allocation per request.
		sw, shared := w.(*statusWriter)
		if !shared || sw.status != 0 {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		took := time.Since(start)
		if st != nil {
			st.took, st.timed = took, true
		}
		s.metrics.observeRequest(routePattern(r), r.Method, sw.status, took)
	})
}

// withDeclaredLength answers 413 at once when a request's Content-Length is over limit(), before anything reads the
// body. Besides saving the upload, this is what makes "Expect: 100-continue" work: Go's server sends "100 Continue"
// only when a handler first reads the body, so a client that waits for it learns of the limit without sending a
// byte. Bodies without a length (chunked) are still cut off by the handler's http.MaxBytesReader.
func (s *Server) withDeclaredLength(limit func() int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if max := limit(); r.ContentLength > max {
				err := errorf(KindTooLarge, fmt.Sprintf("the body is larger than %d bytes", max))
				s.fail(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withChunkedClose closes the connection after answering a request with a chunked body. RFC 9112 section 6.3 asks a
// server to close the connection after a request that came with both Transfer-Encoding and Content-Length, since a
// proxy in front may have framed it by the other header and would send the rest as another request. Go's server
// reads such a request by Transfer-Encoding but deletes both headers before the handler runs, so a handler cannot
// tell those requests from other chunked ones; closing after every chunked request covers them, at the cost of one
// new connection for clients that stream an upload.
func withChunkedClose(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
