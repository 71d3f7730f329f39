package auth

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Identifiers are unique in a canonical form, so that spellings a person
// can't tell apart name one account: "ſam@…" (long s), "ｓam@…" (full-width),
// "sam@ｅxample.com" and "sam@example.com" + a zero-width space all collide
// with "sam@example.com" instead of registering beside it.
//
//   - Email: trimmed; refused if it holds an invisible, format, control or
//     bidi-control character; the local part is NFKC-normalized and
//     lower-cased, the domain converted to IDNA ASCII with the lookup
//     profile (which maps width and case and validates it): the canonical
//     address, stored, shown and mailed to. Accounts are unique by its
//     EmailKey, which also case-folds the local part (NFKC_Casefold: NFKC,
//     full case folding, NFKC again), so "straße@" and "strasse@", or a
//     final and a medial sigma, are one account — without mailing
//     "strasse@" for someone who wrote "straße@".
//   - Username: the PRECIS UsernameCaseMapped profile (RFC 8265: width
//     mapping, case mapping, NFC, only letters, digits and a few symbols),
//     then restricted to ASCII letters, digits, '.', '_' and '-', so that
//     letters of other scripts that look like Latin ones can't be used.
//     The key is unique; the username keeps the spelling it was given.

var (
	errInvisible = errors.New("contains an invisible, formatting or control character")
	errNotEmail  = errors.New("is not an email address")
)

// lookupProfile is IDNA 2008 as browsers and mail servers look domains up.
var lookupProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true),
	idna.VerifyDNSLength(true), idna.Transitional(false))

// CanonicalEmail returns the canonical form of an email address, or an
// error saying why the address is refused.
func CanonicalEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 4*254 {
		return "", errNotEmail
	}
	if hasInvisible(s) {
		return "", errInvisible
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", errNotEmail
	}
	local := strings.ToLower(norm.NFKC.String(s[:at]))
	domain, err := lookupProfile.ToASCII(s[at+1:])
	if err != nil || domain == "" {
		return "", errNotEmail
	}
	e := local + "@" + domain
	if len(e) > 254 || strings.Count(e, "@") != 1 || hasInvisible(local) {
		return "", errNotEmail
	}
	if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
		return "", errNotEmail
	}
	return e, nil
}

// UsernameKey returns the form usernames are unique in, or an error saying
// why the username is refused.
func UsernameKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if hasInvisible(s) {
		return "", errInvisible
	}
	k, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", errors.New("must be 3 to 64 letters, digits, '.', '_' or '-'")
	}
	if n := len(k); n < 3 || n > 64 {
		return "", errors.New("must be 3 to 64 letters, digits, '.', '_' or '-'")
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return "", errors.New("must be 3 to 64 letters, digits, '.', '_' or '-'")
		}
	}
	return k, nil
}

// NormalizeEmail is the key accounts are unique by, for any spelling of an
// address: EmailKey(CanonicalEmail(s)), or "" for a refused address, which
// no account has.
func NormalizeEmail(s string) string {
	e, err := CanonicalEmail(s)
	if err != nil {
		return ""
	}
	return EmailKey(e)
}

// EmailKey is the uniqueness key of a canonical address: its local part
// case-folded (NFKC_Casefold).
func EmailKey(canonical string) string {
	at := strings.LastIndexByte(canonical, '@')
	if at < 0 {
		return canonical
	}
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(canonical[:at]))) + canonical[at:]
}

// NormalizeUsername is UsernameKey for look-ups: "" for a refused username.
func NormalizeUsername(s string) string {
	k, err := UsernameKey(s)
	if err != nil {
		return ""
	}
	return k
}

// hasInvisible reports characters a reader can't see or that change how
// the rest is shown: controls (Cc), formats (Cf: zero-width spaces and
// joiners, bidi embeddings, overrides and isolates, the BOM), private use
// and surrogates, line and paragraph separators, any space but U+0020
// inside the string, variation selectors and combining grapheme joiner,
// and invalid UTF-8.
func hasInvisible(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		switch {
		case r == ' ':
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp, unicode.Zs,
			unicode.Variation_Selector):
			return true
		case r == '\u034f', r == '\u115f', r == '\u1160', r == '\u3164', r == '\uffa0': // CGJ, Hangul fillers
			return true
		}
	}
	return false
}
