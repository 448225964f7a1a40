package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// Kind classifies an error for HTTP: it decides the status code and the problem type. Only KindInternal is logged as
// an error; the others are the caller's doing.
type Kind int

// The kinds of errors the API answers with.
const (
	KindInternal      Kind = iota // 500: our fault
	KindInvalid                   // 400: malformed request
	KindUnauthorized              // 401: missing or wrong admin token
	KindNotFound                  // 404
	KindMethod                    // 405: the route exists, the method does not
	KindConflict                  // 409
	KindSlow                      // 408: the client sent the request too slowly
	KindTooLarge                  // 413: body, part, image count or pixels over a limit
	KindUnsupported               // 415: media type we do not read
	KindUnprocessable             // 422: well-formed but unusable, e.g. not a decodable image
	KindTooMany                   // 429: a client's rate limit
	KindUnavailable               // 503: overloaded, draining or no model
	KindTimeout                   // 504: the answer took too long
)

var kindInfo = map[Kind]struct {
	status int
	slug   string
}{
	KindInternal:      {http.StatusInternalServerError, "internal"},
	KindInvalid:       {http.StatusBadRequest, "invalid-request"},
	KindUnauthorized:  {http.StatusUnauthorized, "unauthorized"},
	KindNotFound:      {http.StatusNotFound, "not-found"},
	KindMethod:        {http.StatusMethodNotAllowed, "method-not-allowed"},
	KindConflict:      {http.StatusConflict, "conflict"},
	KindSlow:          {http.StatusRequestTimeout, "request-timeout"},
	KindTooLarge:      {http.StatusRequestEntityTooLarge, "too-large"},
	KindUnsupported:   {http.StatusUnsupportedMediaType, "unsupported-media-type"},
	KindUnprocessable: {http.StatusUnprocessableEntity, "unprocessable"},
	KindTooMany:       {http.StatusTooManyRequests, "rate-limited"},
	KindUnavailable:   {http.StatusServiceUnavailable, "unavailable"},
	KindTimeout:       {http.StatusGatewayTimeout, "timeout"},
}

// Error is an error with a kind and a message safe to show the client.
type Error struct {
	Kind   Kind
	Detail string
	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int
	// Reason is the rejections_total reason when the kind and the cause do not say what happened; "" lets
	// rejectionReason work it out.
	Reason string
	Err    error // the cause, for logs; never shown to clients of internal errors
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// errorf returns an *Error of kind k.
func errorf(k Kind, detail string) *Error { return &Error{Kind: k, Detail: detail} }

// Problem is the RFC 9457 body of every error response.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// problemTypeBase prefixes every problem type; the OpenAPI document describes each.
const problemTypeBase = "https://perceptron.dev/problems/"

// fail answers with the problem+json body for err, counts the rejection and logs internal errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	s.countRejection(e)
	writeError(w, r, s.log, e)
}

// countRejection counts e in rejections_total under the reason that says what happened.
func (s *Server) countRejection(e *Error) {
	if reason := rejectionReason(e); reason != "" && s.metrics != nil {
		s.metrics.rejections.WithLabelValues(reason).Inc()
	}
}

// rejectionReason names the rejection metric's reason for e: its own Reason when set, else the one its cause or
// its kind implies; "" means not counted as a rejection (not found, conflict, internal errors).
func rejectionReason(e *Error) string {
	if e.Reason != "" {
		return e.Reason
	}
	for _, d := range domainErrors {
		if d.reason != "" && e.Kind == d.kind && errors.Is(e.Err, d.err) {
			return d.reason
		}
	}
	switch e.Kind {
	case KindTooLarge:
		return RejectTooLarge
	case KindUnsupported:
		return RejectUnsupported
	case KindInvalid, KindUnprocessable:
		return RejectInvalid
	case KindMethod:
		return RejectMethod
	case KindSlow:
		return RejectSlow
	case KindUnavailable:
		return RejectUnavailable
	case KindTooMany:
		return RejectRateLimited
	case KindTimeout:
		return RejectTimeout
	case KindUnauthorized:
		return RejectUnauthorized
	}
	return ""
}

// writeError answers err in the shape of its route, problem+json or (under /v2) the protocol's {"error"}, and logs
// internal errors.
func writeError(w http.ResponseWriter, r *http.Request, log *zap.Logger, err error) {
	e := asError(err)
	kind := kindInfo[e.Kind]
	detail := e.Detail
	if e.Kind == KindInternal {
		log.Error("internal error", zap.Error(err), zap.String("request_id", requestID(r.Context())))
		detail = "internal error; the request id identifies it in the logs"
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if info(r.Context()).v2 {
		v2Error(w, kind.status, detail)
		return
	}
	writeProblem(w, Problem{
		Type: problemTypeBase + kind.slug, Title: http.StatusText(kind.status), Status: kind.status,
		Detail: detail, Instance: r.URL.Path,
	})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
