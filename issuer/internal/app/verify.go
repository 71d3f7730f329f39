package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk"
)

// jwksSource is what the token verifier needs of keys.Manager.
type jwksSource interface {
	JWKS() []byte
	Algorithms() []string
}

// tokenVerifier checks the issuer's own access tokens (for /me, logout by
// Bearer token and /oauth/revoke) against its current JWKS, with the same
// rules as the sdk's verifier.
type tokenVerifier struct {
	src      jwksSource
	issuer   string
	audience []string
	leeway   time.Duration

	mu   sync.Mutex
	last []byte
	kf   keyfunc.Keyfunc
}

var _ auth.TokenVerifier = (*tokenVerifier)(nil)

func newTokenVerifier(src jwksSource, issuer string, audience []string, leeway time.Duration) *tokenVerifier {
	return &tokenVerifier{src: src, issuer: issuer, audience: audience, leeway: leeway}
}

func (v *tokenVerifier) keyfunc() (keyfunc.Keyfunc, error) {
	raw := v.src.JWKS()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kf != nil && bytes.Equal(raw, v.last) {
		return v.kf, nil
	}
	kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %w", auth.ErrUnavailable, err)
	}
	v.kf, v.last = kf, raw
	return kf, nil
}

// Verify implements auth.TokenVerifier.
func (v *tokenVerifier) Verify(_ context.Context, token string) (*sdk.Claims, error) {
	if len(token) > sdk.MaxTokenSize {
		return nil, sdk.ErrTooLarge
	}
	kf, err := v.keyfunc()
	if err != nil {
		return nil, err
	}
	// The algorithms come from the key set each time: a replica started
	// with another JOTGUARD_SIGNING_ALG may have added a key of another kind.
	parser := jwt.NewParser(
		jwt.WithValidMethods(v.src.Algorithms()),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
	)
	var c sdk.Claims
	_, err = parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != sdk.TokenType {
			return nil, sdk.ErrWrongType
		}
		for _, h := range []string{"crit", "jwk", "jku", "x5u", "x5c"} {
			if _, ok := t.Header[h]; ok {
				return nil, fmt.Errorf("%w: %s header", sdk.ErrMalformed, h)
			}
		}
		return kf.Keyfunc(t)
	})
	if err != nil {
		return nil, errors.Join(sdk.ErrInvalid, err)
	}
	return &c, nil
}
