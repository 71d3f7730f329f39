// Package reqpath decides whether a request path means the same thing to
// every server that may read it. The verifier judges a path before it
// decides anything about it (a public prefix, a check request's URI), and
// in proxy mode the upstream receives the path exactly as it was sent. A
// servlet container (Tomcat, Jetty, Spring) strips ";" path parameters and
// resolves dot segments, other servers decode twice, drop NUL bytes or read
// "\" as "/": "/public/..;/secret" is under /public for the verifier and
// /secret for such an upstream. Such paths are refused, not normalised:
// whatever normalisation the verifier chose, some upstream would choose
// differently.
package reqpath

import (
	"errors"
	"fmt"
	"strings"
)

// ErrAmbiguous is wrapped by every error of Check and CheckURI.
var ErrAmbiguous = errors.New("ambiguous request path")

// The reasons, made once so that Check never allocates.
var (
	errDotSegment = fmt.Errorf("%w: a dot segment", ErrAmbiguous)
	errSeparator  = fmt.Errorf("%w: an encoded / or \\", ErrAmbiguous)
	errBackslash  = fmt.Errorf("%w: a backslash", ErrAmbiguous)
	errDoubleEnc  = fmt.Errorf("%w: an encoded %% (double encoding)", ErrAmbiguous)
	errControl    = fmt.Errorf("%w: NUL or a control character", ErrAmbiguous)
	errBadEscape  = fmt.Errorf("%w: a malformed %% escape", ErrAmbiguous)
	errOverlong   = fmt.Errorf("%w: an overlong UTF-8 sequence", ErrAmbiguous)
	errNotAPath   = fmt.Errorf("%w: neither a path nor an absolute URL", ErrAmbiguous)
)

// Check returns nil when p, a path as sent on the wire (percent-encoded,
// without the query), is unambiguous, else an error wrapping ErrAmbiguous.
// Ambiguous are:
//   - a dot segment in any spelling: a segment whose name (what precedes
//     its first ";" or "%3B") is "." or "..", each dot written as "." or
//     "%2e"/"%2E" ("..;x", "%2e%2e", ".%2E;jsessionid=1");
//   - "\", and "%2F" or "%5C" (a separator some servers split on and
//     others do not);
//   - "%25" (double encoding: a second decoder sees another path);
//   - a control character, NUL included, raw or encoded;
//   - a malformed escape, and the bytes of an overlong UTF-8 encoding
//     (C0, C1, F5 to FF, E0 then 80 to 9F, F0 then 80 to 8F), which old
//     decoders turned into "." or "/".
//
// It reads p once and allocates nothing.
func Check(p string) error {
	var (
		name, dots int  // bytes of the current segment's name (decoded), and how many are '.'
		params     bool // past the segment's first ';'
		prev       byte // the previous decoded byte
	)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if plain[c] { // most bytes: one table load
			if !params {
				name++
			}
			prev = c
			continue
		}
		switch c {
		case '/':
			if name == dots && (dots == 1 || dots == 2) {
				return errDotSegment
			}
			name, dots, params, prev = 0, 0, false, c
			continue
		case '\\':
			return errBackslash
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return errBadEscape
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch c {
			case '/', '\\':
				return errSeparator
			case '%':
				return errDoubleEnc
			}
		}
		switch {
		case c < 0x20 || c == 0x7f:
			return errControl
		case c == 0xc0 || c == 0xc1 || c >= 0xf5,
			prev == 0xe0 && c >= 0x80 && c < 0xa0,
			prev == 0xf0 && c >= 0x80 && c < 0x90:
			return errOverlong
		case c == ';':
			params = true
		case !params:
			name++
			if c == '.' {
				dots++
			}
		}
		prev = c
	}
	if name == dots && (dots == 1 || dots == 2) {
		return errDotSegment
	}
	return nil
}

// CheckURI applies Check to the path of uri, a request target as a proxy
// reports it (X-Forwarded-Uri, X-Original-URI): "/path?query", an absolute
// URL "http://host/path?query", or "*". An empty uri has no path to judge;
// anything else is ambiguous.
func CheckURI(uri string) error {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	switch {
	case uri == "" || uri == "*":
		return nil
	case uri[0] == '/':
		return Check(uri)
	}
	if i := strings.Index(uri, "://"); i > 0 {
		rest := uri[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return Check(rest[j:])
		}
		return nil // an authority without a path
	}
	return errNotAPath
}

// plain marks the printable ASCII bytes that need no decision of their own:
// all but '/', '\', '%', ';', '.' (and controls and non-ASCII, which are
// not in the table).
var plain = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`/\%;.`, rune(c))
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
