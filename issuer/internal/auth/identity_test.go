package auth_test

import (
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

func TestCanonicalEmail(t *testing.T) {
	for in, want := range map[string]string{
		"sam@example.com":            "sam@example.com",
		"  SAM@Example.COM ":         "sam@example.com",
		"\u017fam@example.com":       "sam@example.com",         // long s
		"\uff53am@example.com":       "sam@example.com",         // full-width s
		"sam@\uff45xample.com":       "sam@example.com",         // full-width e in the domain
		"\u212aate@example.com":      "kate@example.com",        // Kelvin sign
		"stra\u00dfe@example.com":    "stra\u00dfe@example.com", // mailed as written; its key is strasse@
		"sam@B\u00fccher.example":    "sam@xn--bcher-kva.example",
		"j\u00f6rg@example.com":      "j\u00f6rg@example.com",
		"o\u0308rg@example.com":      "\u00f6rg@example.com", // combining diaeresis composes
		"first.last+tag@example.com": "first.last+tag@example.com",
	} {
		got, err := auth.CanonicalEmail(in)
		if err != nil || got != want {
			t.Errorf("CanonicalEmail(%+q) = %+q, %v; want %+q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"sam\u200b@example.com", // zero-width space
		"sam@example.com\u200b", // trailing zero-width space
		"\u202esam@example.com", // right-to-left override
		"sa\u2066m@example.com", // left-to-right isolate
		"sam\ufe0f@example.com", // variation selector
		"s\u00a0am@example.com", // no-break space
		"sam@exa\u00admple.com", // soft hyphen in the domain
		"sam\x00@example.com",   // NUL
		"sam", "@example.com", "sam@", "a@b@c.com", "sam@-bad-.com", "sam@exa mple.com",
		string([]byte{0xff, '@', 'x', '.', 'c', 'o'}), // invalid UTF-8
	} {
		if got, err := auth.CanonicalEmail(in); err == nil {
			t.Errorf("CanonicalEmail(%+q) = %+q, want it refused", in, got)
		}
	}
}

func TestEmailKeyMakesLookAlikesOneAccount(t *testing.T) {
	want := auth.NormalizeEmail("strasse@example.com")
	for _, in := range []string{"STRASSE@example.com", "stra\u00dfe@example.com", "stra\u1e9ee@example.com"} {
		if got := auth.NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%+q) = %+q, want %+q", in, got, want)
		}
	}
	if got := auth.NormalizeEmail("\u03bf\u03c2@example.com"); got != auth.NormalizeEmail("\u039f\u03a3@example.com") {
		t.Errorf("final sigma and capital sigma differ: %+q", got)
	}
	if got := auth.NormalizeEmail("sam\u200b@example.com"); got != "" {
		t.Errorf("a refused address has the key %+q, want none", got)
	}
}

func TestUsernameKey(t *testing.T) {
	for in, want := range map[string]string{
		"ada":                "ada",
		" Ada.Lovelace_1-x ": "ada.lovelace_1-x",
		"\uff41\uff44\uff41": "ada", // full-width
	} {
		got, err := auth.UsernameKey(in)
		if err != nil || got != want {
			t.Errorf("UsernameKey(%+q) = %+q, %v; want %+q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"\u0430da",  // Cyrillic a: looks Latin
		"ada\u200d", // zero-width joiner
		"a d a", "ad", "ada!", "\u202eada", "",
		"a1234567890123456789012345678901234567890123456789012345678901234",
	} {
		if got, err := auth.UsernameKey(in); err == nil {
			t.Errorf("UsernameKey(%+q) = %+q, want it refused", in, got)
		}
	}
}
