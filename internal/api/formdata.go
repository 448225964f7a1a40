// A strict reader of the multipart/form-data bodies that browsers, curl and client libraries send, for small bodies
// already in memory; anything else goes to mime/multipart.

package api

import (
	"bytes"
	"strings"
	"unsafe"
)

// maxBoundary is the longest boundary RFC 2046 allows; a longer one goes to mime/multipart.
const maxBoundary = 70

// formScanner walks a multipart/form-data body held in memory, part by part, accepting only one plain shape:
//
//	--B CRLF part (CRLF --B CRLF part)* CRLF --B-- [CRLF anything]
//
// where each part is, in this order, a Content-Disposition header that is exactly form-data; name="N" with an
// optional ; filename="F", an optional Content-Type header, an empty line and the content. N is not empty; N, F and the
// Content-Type are printable ASCII, without quotes or backslashes in N and F. Every body in that shape is read by
// mime/multipart into the same parts, names, file names and contents (FuzzFormScanner checks it against
// mime/multipart), and the shape leaves out everything mime/multipart reads in more than one way or refuses (a
// preamble, bare LF line ends, whitespace after a boundary, other headers, escapes, folded lines, encoded
// parameters), so a body the scanner refuses is simply read by mime/multipart instead.
type formScanner struct {
	rest []byte
	// buf[:n] is the delimiter that ends a part's content: CRLF "--" boundary. (A slice of buf kept in the scanner
	// would make the scanner point into itself, which moves it to the heap.)
	buf  [4 + maxBoundary]byte
	n    int
	done bool
}

func (s *formScanner) delim() []byte { return s.buf[:s.n] }

// start readies s to scan body, or reports that body does not begin in the shape the scanner reads.
func (s *formScanner) start(body []byte, boundary string) bool {
	if boundary == "" || len(boundary) > maxBoundary {
		return false
	}
	s.n = copy(s.buf[:], "\r\n--")
	s.n += copy(s.buf[s.n:], boundary)
	dash := s.delim()[2:]
	if !bytes.HasPrefix(body, dash) || !bytes.HasPrefix(body[len(dash):], crlf) {
		return false
	}
	s.rest, s.done = body[len(dash)+2:], false
	return true
}

var (
	crlf               = []byte("\r\n")
	dispositionPrefix  = []byte("Content-Disposition: form-data; name=\"")
	filenameParam      = []byte("; filename=\"")
	contentTypePrefix  = []byte("Content-Type: ")
	finalDelimiterDash = []byte("--")
)

// next returns the next part, with ok false when there are no more. A body not in the scanner's shape stops the
// walk with bad set; the parts returned before it may then not be the body's, so callers scan a body through once
// (valid) before they use any part.
func (s *formScanner) next() (name, filename, content []byte, ok, bad bool) {
	if s.done {
		return nil, nil, nil, false, false
	}
	line, ok := s.line()
	if !ok || !bytes.HasPrefix(line, dispositionPrefix) {
		return nil, nil, nil, false, true
	}
	params := line[len(dispositionPrefix):]
	name, params, ok = quoted(params)
	if !ok || len(name) == 0 {
		return nil, nil, nil, false, true
	}
	if len(params) > 0 {
		if !bytes.HasPrefix(params, filenameParam) {
			return nil, nil, nil, false, true
		}
		if filename, params, ok = quoted(params[len(filenameParam):]); !ok || len(params) > 0 {
			return nil, nil, nil, false, true
		}
	}
	if line, ok = s.line(); !ok {
		return nil, nil, nil, false, true
	}
	if bytes.HasPrefix(line, contentTypePrefix) {
		v := line[len(contentTypePrefix):]
		if len(v) == 0 || v[0] == ' ' || v[len(v)-1] == ' ' || !printable(v) {
			return nil, nil, nil, false, true
		}
		if line, ok = s.line(); !ok {
			return nil, nil, nil, false, true
		}
	}
	if len(line) != 0 {
		return nil, nil, nil, false, true
	}
	// mime/multipart also ends a part at a boundary right at the start of its content, with no CRLF before it.
	delim := s.delim()
	if bytes.HasPrefix(s.rest, delim[2:]) {
		return nil, nil, nil, false, true
	}
	end := bytes.Index(s.rest, delim)
	if end < 0 {
		return nil, nil, nil, false, true
	}
	content, after := s.rest[:end], s.rest[end+len(delim):]
	switch {
	case bytes.HasPrefix(after, crlf):
		s.rest = after[2:]
	case bytes.HasPrefix(after, finalDelimiterDash) && (len(after) == 2 || bytes.HasPrefix(after[2:], crlf)):
		s.rest, s.done = nil, true
	default:
		return nil, nil, nil, false, true
	}
	return name, filename, content, true, false
}

// line returns the next header line without its CRLF, or false when there is none or it holds anything but
// printable ASCII.
func (s *formScanner) line() ([]byte, bool) {
	i := bytes.Index(s.rest, crlf)
	if i < 0 || !printable(s.rest[:i]) {
		return nil, false
	}
	line := s.rest[:i]
	s.rest = s.rest[i+2:]
	return line, true
}

// quoted splits p after a quoted string's content, whose opening quote is already consumed: the content, which
// has no backslash, and what follows the closing quote.
func quoted(p []byte) (value, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '"')
	if i < 0 || bytes.IndexByte(p[:i], '\\') >= 0 {
		return nil, nil, false
	}
	return p[:i], p[i+1:], true
}

// printable reports whether b holds only printable ASCII (space to tilde).
func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// formPart is a part of a form in the scanner's shape: its name, its file name and its content, slices of the body.
type formPart struct{ name, filename, content []byte }

// minPartBytes is the fewest bytes of a body a part in the scanner's shape takes (its boundary line and headers).
const minPartBytes = 48

// keptParts is how many parts readFormData keeps without an allocation.
const keptParts = 16

// partsBytes is the most memory the parts of a body of n bytes can take beyond the keptParts kept without an
// allocation, which readFormData reserves with the body.
func partsBytes(n int64) int64 {
	if n/minPartBytes <= keptParts {
		return 0
	}
	return n / minPartBytes * int64(unsafe.Sizeof(formPart{}))
}

// scanForm returns parts with the parts of body appended, or false when body is not entirely in the scanner's shape.
// Keeping the parts spares a second walk through the body: a part is at least minPartBytes of it, so they take at
// most one and a half times its size (partsBytes).
func scanForm(body []byte, boundary string, parts []formPart) ([]formPart, bool) {
	var s formScanner
	if !s.start(body, boundary) {
		return parts, false
	}
	for {
		name, filename, content, ok, bad := s.next()
		if bad {
			return parts, false
		}
		if !ok {
			return parts, true
		}
		parts = append(parts, formPart{name, filename, content})
	}
}

// formBoundary returns the boundary of a Content-Type spelt exactly multipart/form-data; boundary=B with B a plain
// token, as clients write it, without the map mime.ParseMediaType makes; ok is false for any other spelling, which
// mime.ParseMediaType reads instead (FuzzFormBoundary checks the two agree).
func formBoundary(ct string) (boundary string, ok bool) {
	const prefix = "multipart/form-data; boundary="
	if !strings.HasPrefix(ct, prefix) || len(ct) == len(prefix) {
		return "", false
	}
	b := ct[len(prefix):]
	for i := range len(b) {
		if !tokenByte[b[i]] {
			return "", false
		}
	}
	return b, true
}

// tokenByte holds the bytes of a plain token as formBoundary takes it: printable ASCII but for space and the
// separators ()<>@,;:\"/[]?=. A table lookup a byte costs less than searching the separators for each.
var tokenByte = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`()<>@,;:\"/[]?=`, c)
	}
	return t
}()
