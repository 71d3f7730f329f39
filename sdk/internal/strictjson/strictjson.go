// Package strictjson refuses the JSON that encoding/json would read
// leniently in a token's claims, before it is decoded: encoding/json keeps
// the last of two members with the same name, matches member names
// case-insensitively (so "EXP" can stand in for "exp"), and lets a
// json.Number come from a string ("exp": "9999999999"). Another JWT library
// reading the same token may decide otherwise; a token whose meaning
// depends on the reader is refused instead.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrAmbiguous wraps every refusal of Check.
var ErrAmbiguous = errors.New("ambiguous JSON")

// Rules say what Check refuses besides duplicate members.
type Rules struct {
	// Known are member names (lower-case ASCII, as they are spelled) that
	// must appear in exactly this spelling at any depth: "Exp", "EXP" or
	// "ſub" (which encoding/json folds to "sub") is refused.
	Known map[string]bool
	known [][]byte
	// Numbers are top-level members that must be JSON numbers when present
	// (NumericDates: exp, nbf, iat).
	Numbers map[string]bool
}

// NewRules returns Rules for the known names, of which numbers must be
// JSON numbers at the top level.
func NewRules(known []string, numbers ...string) Rules {
	r := Rules{Known: map[string]bool{}, Numbers: map[string]bool{}}
	for _, k := range known {
		r.Known[k] = true
	}
	for _, n := range numbers {
		r.Known[n] = true
		r.Numbers[n] = true
	}
	for k := range r.Known {
		r.known = append(r.known, []byte(k))
	}
	return r
}

// Check scans b, a JSON object, and refuses duplicate member names in any
// object, a case variant of a known name anywhere, and a non-number value of
// a top-level number member. It does not otherwise validate the syntax: the
// decoder that reads b afterwards does. It allocates only for member names
// that contain escapes.
func Check(b []byte, r Rules) error {
	s := scanner{b: b, r: r}
	s.ws()
	if s.peek() != '{' {
		return fmt.Errorf("%w: claims are not a JSON object", ErrAmbiguous)
	}
	if err := s.object(0); err != nil {
		return err
	}
	return nil
}

type scanner struct {
	b []byte
	i int
	r Rules
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

var errSyntax = fmt.Errorf("%w: malformed JSON", ErrAmbiguous)

// maxDepth bounds nesting; claims never nest deeply.
const maxDepth = 32

// object scans {...} at s.i; depth 0 is the top level.
func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deeply", ErrAmbiguous)
	}
	s.i++ // {
	// Most objects have few members: a slice on the stack beats a map.
	var buf [16][]byte
	seen := buf[:0]
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return errSyntax
		}
		name, err := s.str()
		if err != nil {
			return err
		}
		for _, n := range seen {
			if bytes.Equal(n, name) {
				return fmt.Errorf("%w: member %.40q appears twice", ErrAmbiguous, name)
			}
		}
		seen = append(seen, name)
		if !s.r.Known[string(name)] && foldable(name) {
			for _, k := range s.r.known {
				if bytes.EqualFold(name, k) {
					return fmt.Errorf("%w: member %.40q is a case variant of %q", ErrAmbiguous, name, k)
				}
			}
		}
		s.ws()
		if s.peek() != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		if depth == 0 && s.r.Numbers[string(name)] {
			if c := s.peek(); c != '-' && (c < '0' || c > '9') {
				return fmt.Errorf("%w: %q is not a JSON number", ErrAmbiguous, name)
			}
		}
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// value scans any JSON value at s.i.
func (s *scanner) value(depth int) error {
	switch c := s.peek(); c {
	case '{':
		return s.object(depth + 1)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, err := s.skipStr()
		return err
	case 0:
		return errSyntax
	default: // number, true, false, null: up to the next delimiter
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deeply", ErrAmbiguous)
	}
	s.i++ // [
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// skipStr moves past the string at s.i and says whether it had escapes.
func (s *scanner) skipStr() (escaped bool, err error) {
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
		case '"':
			s.i++
			return escaped, nil
		default:
			s.i++
		}
	}
	return false, errSyntax
}

// str returns the decoded string at s.i: a member name. It copies only a
// name with escapes.
func (s *scanner) str() ([]byte, error) {
	start := s.i
	escaped, err := s.skipStr()
	if err != nil {
		return nil, err
	}
	raw := s.b[start:s.i]
	if !escaped {
		return raw[1 : len(raw)-1], nil
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, errSyntax
	}
	return []byte(out), nil
}

// foldable says whether name could equal a lower-case ASCII name under
// Unicode case folding without being equal to it: it has an upper-case or a
// non-ASCII byte.
func foldable(name []byte) bool {
	for _, c := range name {
		if c >= 0x80 || ('A' <= c && c <= 'Z') {
			return true
		}
	}
	return false
}
