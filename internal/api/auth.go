package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Failed admin attempts are limited per client address: after Config.AdminFailLimit failures within failWindow,
// further attempts are refused with 429 until the window has passed, so a token cannot be guessed at network speed.
const failWindow = time.Minute

// failures counts recent failed admin attempts per client address.
type failures struct {
	limit int
	mu    sync.Mutex
	byIP  map[string]*failRecord
}

type failRecord struct {
	count int
	start time.Time
}

// blocked reports whether ip has used up its failed attempts, and for how long.
func (f *failures) blocked(ip string, now time.Time) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.byIP[ip]
	if r == nil || now.Sub(r.start) > failWindow {
		return false, 0
	}
	if r.count >= f.limit {
		return true, failWindow - now.Sub(r.start)
	}
	return false, 0
}

func (f *failures) record(ip string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byIP == nil {
		f.byIP = map[string]*failRecord{}
	}
	// Forget stale records now and then so the map cannot grow without bound.
	if len(f.byIP) > 10000 {
		for k, r := range f.byIP {
			if now.Sub(r.start) > failWindow {
				delete(f.byIP, k)
			}
		}
	}
	r := f.byIP[ip]
	if r == nil || now.Sub(r.start) > failWindow {
		r = &failRecord{start: now}
		f.byIP[ip] = r
	}
	r.count++
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// withAdmin lets a request through only with "Authorization: Bearer <token>". Tokens are compared as SHA-256
// digests in constant time, so neither their content nor their length leaks through timing. Every admin request is
// logged with who, what and the result; the token itself never is.
func (s *Server) withAdmin(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		now := time.Now()
		if blocked, wait := s.fails.blocked(ip, now); blocked {
			s.log.Warn("admin request refused: too many failed attempts", zap.String("client", ip),
				zap.String("method", methodLabel(r.Method)), zap.String("path", truncate(r.URL.Path, 256)),
				zap.String("request_id", requestID(r.Context())))
			s.fail(w, r, &Error{Kind: KindTooMany, Detail: "too many failed admin attempts; wait and retry",
				RetryAfter: int(wait.Seconds()) + 1})
			return
		}
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if len(r.Header.Values("Authorization")) > 1 {
			ok = false // two credentials: which one is meant is anybody's guess
		}
		got := sha256.Sum256([]byte(token))
		if !ok || s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.fails.record(ip, now)
			reason := "wrong"
			switch {
			case r.Header.Get("Authorization") == "":
				reason = "missing"
			case !ok:
				reason = "malformed"
			}
			s.log.Warn("admin request refused", zap.String("client", ip), zap.String("reason", reason+" token"),
				zap.String("method", methodLabel(r.Method)), zap.String("path", truncate(r.URL.Path, 256)),
				zap.String("request_id", requestID(r.Context())))
			errType := ""
			if ok {
				errType = `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="perceptron admin"`+errType)
			s.fail(w, r, errorf(KindUnauthorized, reason+" admin token: send Authorization: Bearer <ADMIN_TOKEN>"))
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log.Info("admin action", zap.String("client", ip), zap.String("method", methodLabel(r.Method)),
			zap.String("path", truncate(r.URL.Path, 256)), zap.Int("status", sw.status), zap.String("request_id", requestID(r.Context())))
	})
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header. The scheme is case-insensitive; a
// token with spaces or control characters, or longer than 4 KiB, is malformed.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 4096 {
		return "", false
	}
	for _, c := range []byte(token) {
		if c <= ' ' || c == 0x7f {
			return "", false
		}
	}
	return token, true
}
