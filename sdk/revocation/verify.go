package revocation

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// ErrBadSignature wraps every reason a SET's JWS is not trusted: size,
// shape, typ, forbidden header, alg, unknown key, signature. ErrBadEvent
// covers a signed SET whose claims are wrong: iss, aud, exp, or a payload
// that is not one jotguard session-revoked event.
var ErrBadSignature = errors.New("revocation: untrusted event")

// MaxSETSize is the largest SET Verify decodes.
const MaxSETSize = 16 << 10

// SETVerifier checks signed revocation events (SPEC §3).
type SETVerifier struct {
	keyfunc jwt.Keyfunc
	algs    []string
	parser  *jwt.Parser
}

// NewSETVerifier returns a SETVerifier whose keys come from keyfunc (use the
// access-token Verifier's Keyfunc: same issuer, same JWKS). A SET must be
// issued by issuer, addressed to one of audience, and signed with one of
// algs (default ES256, EdDSA, RS256; HS* and none are never accepted).
func NewSETVerifier(keyfunc jwt.Keyfunc, issuer string, audience []string, algs []string) *SETVerifier {
	if len(algs) == 0 {
		algs = []string{"ES256", "EdDSA", "RS256"}
	}
	algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool {
		return strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS")
	})
	return &SETVerifier{
		keyfunc: keyfunc,
		algs:    algs,
		parser: jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithStrictDecoding(),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience...), // any one of them
		),
	}
}

// Verify checks raw and returns the event it carries. Its errors wrap
// ErrBadSignature or ErrBadEvent, and the cause.
func (v *SETVerifier) Verify(raw []byte) (Event, error) {
	if len(raw) > MaxSETSize {
		return Event{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadSignature, len(raw), MaxSETSize)
	}
	var set SET
	_, err := v.parser.ParseWithClaims(string(raw), &set, v.checkedKeyfunc)
	switch {
	case errors.Is(err, ErrBadEvent):
		return Event{}, err
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return Event{}, fmt.Errorf("%w: %w", ErrBadEvent, err)
	case err != nil:
		return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return set.Event()
}

// Validate implements jwt.ClaimsValidator: a SET has no exp (RFC 8417).
func (s SET) Validate() error {
	if s.ExpiresAt != nil {
		return fmt.Errorf("%w: a SET has no exp", ErrBadEvent)
	}
	return nil
}

func (v *SETVerifier) checkedKeyfunc(t *jwt.Token) (any, error) {
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return nil, fmt.Errorf("typ %.40q is not %s", typ, TokenType)
	}
	for _, h := range []string{"crit", "jwk", "jku", "x5u", "x5c"} {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("header %q is not allowed", h)
		}
	}
	if v.keyfunc == nil {
		return nil, errors.New("no keyfunc")
	}
	return v.keyfunc(t)
}
