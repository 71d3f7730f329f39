package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
)

// ErrBadSignature wraps every reason a SET's JWS is not trusted: size,
// shape, typ, forbidden header, alg, unknown key, signature. ErrBadEvent
// covers a signed SET whose claims are wrong: iss, aud, exp, or a payload
// that is not one jotguard session-revoked event.
var ErrBadSignature = errors.New("revocation: untrusted event")

// MaxSETSize is the largest SET Verify decodes.
const MaxSETSize = 16 << 10

// SETVerifier checks signed revocation events.
type SETVerifier struct {
	keys   sdk.KeySource
	algs   []string
	parser *jwt.Parser
}

// NewSETVerifier returns a SETVerifier that trusts what the access tokens'
// Verifier trusts (sdk.Verifier.EventTrust): a SET must be signed by one of
// its keys with one of its algorithms (default ES256, EdDSA, RS256; HS* and
// none are never accepted), issued by its issuer and addressed to one of
// its audiences.
func NewSETVerifier(trust sdk.EventTrust) *SETVerifier {
	algs := trustedAlgs(trust)
	return &SETVerifier{
		keys: trust.Keys,
		algs: algs,
		parser: jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithStrictDecoding(),
			jwt.WithIssuer(trust.Issuer),
			jwt.WithAudience(trust.Audience...), // any one of them
		),
	}
}

// Verify checks raw and returns the event it carries. Its errors wrap
// ErrBadSignature or ErrBadEvent, and the cause; when the key is not
// known (yet), the cause wraps sdk.ErrUnknownKey or sdk.ErrNotReady.
func (v *SETVerifier) Verify(ctx context.Context, raw []byte) (Event, error) {
	if len(raw) > MaxSETSize {
		return Event{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadSignature, len(raw), MaxSETSize)
	}
	var set SET
	_, err := v.parser.ParseWithClaims(string(raw), &set, func(t *jwt.Token) (any, error) {
		return v.checkedKeyfunc(ctx, t)
	})
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

func (v *SETVerifier) checkedKeyfunc(ctx context.Context, t *jwt.Token) (any, error) {
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return nil, fmt.Errorf("typ %.40q is not %s", typ, TokenType)
	}
	for _, h := range []string{"crit", "jwk", "jku", "x5u", "x5c"} {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("header %q is not allowed", h)
		}
	}
	if v.keys == nil {
		return nil, errors.New("no key source")
	}
	return v.keys.Key(ctx, t)
}

// RecordVerifier authenticates the records of the revocation topic, which
// come in two formats: a batch (what the issuer writes) and a single SET
// (what issuers wrote before batches, and what a relay of such an issuer
// still forwards from its outbox).
type RecordVerifier struct {
	sets    *SETVerifier
	batches *BatchVerifier
}

// NewRecordVerifier returns a RecordVerifier that trusts what trust says
// (see NewSETVerifier and NewBatchVerifier).
func NewRecordVerifier(trust sdk.EventTrust) *RecordVerifier {
	return &RecordVerifier{sets: NewSETVerifier(trust), batches: NewBatchVerifier(trust)}
}

// Verify checks one record value and returns its events: a batch's, or a
// SET's one. Its errors are those of BatchVerifier.Verify and
// SETVerifier.Verify.
func (v *RecordVerifier) Verify(ctx context.Context, value []byte) ([]Event, error) {
	if IsBatch(value) {
		b, err := v.batches.Verify(ctx, value)
		return b.Events, err
	}
	e, err := v.sets.Verify(ctx, value)
	if err != nil {
		return nil, err
	}
	return []Event{e}, nil
}
