package reqpath_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/verifier/internal/reqpath"
)

var ambiguous = []string{
	// dot segments, every spelling, with and without parameters
	"/..", "/.", "/a/..", "/a/.", "/a/../b", "/a/./b", "..", ".", "/a/..;/b", "/a/.;/b", "/a/..;jsessionid=1/b",
	"/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2e/b", "/a/%2e./b", "/a/.%2E/b", "/a/%2e/b", "/a/%2e%2e;x/b",
	"/a/..%3b/b", "/a/..%3Bx/b", "/a/.%3b/b", "/a/%2e%2e%3b%2e%2e/b",
	// separators
	"/a/..%2fb", "/a%2fb", "/a%2Fb", "/a%5cb", "/a%5Cb", `/a\b`, `\a`,
	// double encoding
	"/a/%252e%252e/b", "/a%25", "/a%2541", "/100%25",
	// control characters
	"/a%00", "/a%00b", "/a\x00b", "/a%0a", "/a%0D", "/a\tb", "/a%7f", "/a%1f",
	// malformed escapes
	"/a%", "/a%2", "/a%zz", "/a%2g", "/a%%41",
	// overlong UTF-8
	"/%c0%ae%c0%ae/b", "/%C0%AF", "/%c1%9c", "/%e0%80%ae", "/%f0%80%80%ae", "/%f5", "/%ff", "/\xc0\xae",
}

var unambiguous = []string{
	"", "/", "*", "/a", "/a/b/", "//a//b", "/a.b", "/.a", "/a.", "/...", "/....", "/%2e%2e%2e", "/.well-known/x",
	"/a;b", "/a;b/c", "/;x/a", "/a;..", "/a;%2e%2e/b", "/file%2ejs", "/a%20b", "/%41", "/%c3%a9t%c3%a9",
	"/%e2%82%ac", "/%f0%9f%98%80", "/a%3fb", "/a%23b", "/a+b", "/a:b@c", "/~user", "/a%3bb",
}

func TestCheck(t *testing.T) {
	for _, p := range ambiguous {
		if err := reqpath.Check(p); !errors.Is(err, reqpath.ErrAmbiguous) {
			t.Errorf("Check(%q) = %v, want ErrAmbiguous", p, err)
		}
	}
	for _, p := range unambiguous {
		if err := reqpath.Check(p); err != nil {
			t.Errorf("Check(%q) = %v, want nil", p, err)
		}
	}
}

func TestCheckURI(t *testing.T) {
	for uri, bad := range map[string]bool{
		"":                            false,
		"*":                           false,
		"/a?b=../..;%2f":              false, // the query is not the path
		"/a/..;/b?x":                  true,
		"http://h/a/%2e%2e/b?x":       true,
		"https://h:8443/a/b?x=..":     false,
		"http://h":                    false,
		"http://h?x":                  false,
		"a/b":                         true,
		"../b":                        true,
		"h/a":                         true,
		"http://h/a\\b":               true,
		"/public/%252e%252e/secret?q": true,
	} {
		if err := reqpath.CheckURI(uri); (err != nil) != bad || (err != nil && !errors.Is(err, reqpath.ErrAmbiguous)) {
			t.Errorf("CheckURI(%q) = %v, want ambiguous %v", uri, err, bad)
		}
	}
}

// A clean path costs no allocation (the check runs on every proxied
// request and every check request).
func TestCheckDoesNotAllocate(t *testing.T) {
	for _, p := range append(unambiguous, ambiguous...) {
		if n := testing.AllocsPerRun(100, func() { _ = reqpath.Check(p) }); n != 0 {
			t.Errorf("Check(%q): %v allocations", p, n)
		}
	}
}

// reference is what the rule means, written the slow and obvious way: a
// path passes when, for every segment, neither its raw bytes nor any
// number of decodings of it hold a separator, a NUL, or a name (before a
// ";") that is "." or "..".
func reference(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		for s := seg; ; {
			if strings.ContainsAny(s, "\\\x00") {
				return false
			}
			name, _, _ := strings.Cut(s, ";")
			if name == "." || name == ".." {
				return false
			}
			d, err := url.PathUnescape(s)
			if err != nil || d == s {
				break
			}
			if strings.Contains(d, "/") {
				return false
			}
			s = d
		}
	}
	return true
}

// FuzzCheck: whatever Check lets through, the slow reference lets through
// too (Check may refuse more: every %25, control characters, overlong
// UTF-8). `go test -fuzz FuzzCheck ./internal/reqpath` explores; the seeds
// run with every go test.
func FuzzCheck(f *testing.F) {
	for _, p := range append(ambiguous, unambiguous...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if reqpath.Check(p) == nil && !reference(p) {
			t.Fatalf("Check(%q) passes a path the reference finds ambiguous", p)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"short", "/api/orders"},
		{"typical", "/api/v1/users/8c1f0e7a-3b4d-4e5f-9a6b-7c8d9e0f1a2b/orders/12345"},
		{"long", "/" + strings.Repeat("segment/", 32) + "index.html"},
		{"escaped", "/files/r%C3%A9sum%C3%A9%20final.pdf"},
		{"refused", "/public/..;/secret"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.path)))
			for b.Loop() {
				_ = reqpath.Check(bc.path)
			}
		})
	}
}
