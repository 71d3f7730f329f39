package auth_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// FuzzCanonicalEmail: whatever the input, CanonicalEmail never panics; an
// address it accepts is valid UTF-8, has no invisible characters left, is
// its own canonical form (idempotent), and has the same uniqueness key as
// the input; usernames likewise.
func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range []string{"sam@example.com", " SAM@Example.COM ", "\u017fam@example.com", "sam@\uff45xample.com",
		"sam\u200b@example.com", "stra\u00dfe@example.com", "a@b@c", "@", "sam@xn--bcher-kva.example", "\x00@x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := auth.CanonicalEmail(in)
		if err == nil {
			if !utf8.ValidString(e) || strings.Count(e, "@") != 1 {
				t.Fatalf("CanonicalEmail(%+q) = %+q: not one address", in, e)
			}
			again, err := auth.CanonicalEmail(e)
			if err != nil || again != e {
				t.Fatalf("CanonicalEmail is not idempotent: %+q → %+q → %+q, %v", in, e, again, err)
			}
			if auth.NormalizeEmail(in) != auth.EmailKey(e) || auth.EmailKey(e) == "" {
				t.Fatalf("keys differ: %+q has %+q, its canonical form %+q has %+q", in, auth.NormalizeEmail(in), e, auth.EmailKey(e))
			}
		} else if auth.NormalizeEmail(in) != "" {
			t.Fatalf("a refused address %+q has the key %+q", in, auth.NormalizeEmail(in))
		}
		if k, err := auth.UsernameKey(in); err == nil {
			if again, err := auth.UsernameKey(k); err != nil || again != k {
				t.Fatalf("UsernameKey is not idempotent: %+q → %+q → %+q, %v", in, k, again, err)
			}
		}
	})
}

// FuzzRefreshToken: whatever a client presents as a refresh token (cookie or
// body), parsing it never panics; a token with a chain keeps it in its
// successor, and a successor is always a well-formed chained token.
func FuzzRefreshToken(f *testing.F) {
	f.Add(auth.NewRefreshToken())
	f.Add(strings.Repeat("A", 43))
	f.Add("")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, in string) {
		chain, ok := auth.RefreshChain(in)
		next := auth.NextRefreshToken(in)
		nextChain, nok := auth.RefreshChain(next)
		if !nok {
			t.Fatalf("NextRefreshToken(%+q) = %+q: not a chained token", in, next)
		}
		if ok && string(chain) != string(nextChain) {
			t.Fatalf("the successor of %+q left its chain", in)
		}
		_ = auth.LegacyRefreshToken(in)
	})
}
