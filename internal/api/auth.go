package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Failed admin attempts are limited per client address: after Config.AdminFailLimit failures within failWindow,
// further failed attempts are answered 429 until the window has passed, so a token cannot be guessed at network
// speed. A request with the right token always passes: the limit slows guessing down, and must not let anyone who
// shares an address with the operators (every client behind one ingress, without TRUSTED_PROXIES) lock them out.
const failWindow = time.Minute

// maxFailAddresses bounds the addresses whose failures are counted one by one. Beyond it, failures from addresses
// not yet counted share one record, so a flood of addresses costs a fixed amount of memory and still gains no more
// guesses than AdminFailLimit per window from that overflow.
const maxFailAddresses = 10000

// failures counts recent failed admin attempts per client address.
type failures struct {
	limit int
	max   int // addresses counted one by one at most; 0 means maxFailAddresses
	mu    sync.Mutex
	byIP  map[string]*failRecord
	// order holds the addresses in the order their records started, which is also the order they expire in, so
	// expired records are forgotten from its front at a constant cost per record.
	order    []string
	overflow failRecord // shared by addresses beyond max
}

type failRecord struct {
	count int
	start time.Time
}

// fail records a failed attempt from ip at now. It reports whether ip had already used up its attempts, and then for
// how long it must wait; such an attempt is not counted again.
func (f *failures) fail(ip string, now time.Time) (blocked bool, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byIP == nil {
		f.byIP = map[string]*failRecord{}
	}
	for len(f.order) > 0 {
		r := f.byIP[f.order[0]]
		if r != nil && now.Sub(r.start) <= failWindow {
			break
		}
		delete(f.byIP, f.order[0])
		f.order[0] = ""
		f.order = f.order[1:]
	}
	r := f.byIP[ip]
	if r == nil {
		max := f.max
		if max <= 0 {
			max = maxFailAddresses
		}
		if len(f.byIP) < max {
			r = &failRecord{start: now}
			f.byIP[ip] = r
			f.order = append(f.order, ip)
		} else {
			r = &f.overflow
		}
	}
	if now.Sub(r.start) > failWindow {
		*r = failRecord{start: now}
	}
	if r.count >= f.limit {
		return true, failWindow - now.Sub(r.start)
	}
	r.count++
	return false, 0
}

// tracked is how many addresses have a record of their own, for tests.
func (f *failures) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byIP)
}

// clientAddr is the address failed admin attempts are counted against. It is the peer's address, unless the peer is
// one of the trusted proxies: then it is the nearest address in the forwarding headers (Forwarded, else
// X-Forwarded-For) that is not a trusted proxy, read from the right, where the trusted proxies appended what they
// saw. Everything left of that is the client's own say and is ignored. Without trusted proxies the headers are never
// read, so a client cannot choose the address it is counted under.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := forwardedHops(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			break // "unknown" or an obfuscated name: the nearest trusted proxy is as far as we can see
		}
		addr = hop
		if !isTrusted(hop, trusted) {
			break
		}
	}
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxHops bounds the forwarding entries read, however long the headers are.
const maxHops = 64

// forwardedHops lists the client addresses of the forwarding headers, nearest last: the for= parameters of
// Forwarded (RFC 7239) when there is one, else the entries of X-Forwarded-For. An element without for= is an
// empty entry, which parseHop refuses. Only the last maxHops entries are kept.
func forwardedHops(h http.Header) []string {
	var hops []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, line := range fwd {
			for elem := range strings.SplitSeq(line, ",") {
				hop := ""
				for pair := range strings.SplitSeq(elem, ";") {
					if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
						hop = v
					}
				}
				hops = appendHop(hops, hop)
			}
		}
		return hops
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(line, ",") {
			hops = appendHop(hops, hop)
		}
	}
	return hops
}

func appendHop(hops []string, hop string) []string {
	if len(hops) == maxHops {
		copy(hops, hops[1:])
		hops = hops[:maxHops-1]
	}
	return append(hops, hop)
}

// parseHop reads one forwarding entry: an IPv4 or IPv6 address, optionally quoted, bracketed and with a port
// ("192.0.2.1", "192.0.2.1:4711", "\"[2001:db8::1]:4711\"", "2001:db8::1").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// withAdmin lets a request through only with "Authorization: Bearer <token>". Tokens are compared as SHA-256
// digests in constant time, so neither their content nor their length leaks through timing. Every admin request is
// logged with who, what and the result; the token itself never is.
func (s *Server) withAdmin(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if len(r.Header.Values("Authorization")) > 1 {
			ok = false // two credentials: which one is meant is anybody's guess
		}
		got := sha256.Sum256([]byte(token))
		ip := clientAddr(r, s.cfg.TrustedProxies)
		if !ok || s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			reason := "wrong"
			switch {
			case r.Header.Get("Authorization") == "":
				reason = "missing"
			case !ok:
				reason = "malformed"
			}
			if blocked, wait := s.fails.fail(ip, time.Now()); blocked {
				s.log.Warn("admin request refused: too many failed attempts", zap.String("client", ip),
					zap.String("reason", reason+" token"), zap.String("method", methodLabel(r.Method)),
					zap.String("path", truncate(r.URL.Path, 256)), zap.String("request_id", requestID(r.Context())))
				s.fail(w, r, &Error{Kind: KindTooMany, Detail: "too many failed admin attempts; wait and retry",
					RetryAfter: int(wait.Seconds()) + 1, Reason: RejectAuthLimited})
				return
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
