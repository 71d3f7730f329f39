package sdk

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Verify's errors wrap exactly one of these; callers use errors.Is. The texts
// are safe to show to clients.
//
// Headers a jotguard token never carries (crit, jwk, jku, x5u, x5c) are
// reported as ErrMalformed: the token is not of the shape the issuer mints,
// whatever its claims say.
var (
	ErrMissingToken          = errors.New("sdk: missing token")
	ErrTooLarge              = errors.New("sdk: token too large")
	ErrMalformed             = errors.New("sdk: malformed token")
	ErrWrongType             = errors.New("sdk: not an access token")
	ErrUnsupportedAlg        = errors.New("sdk: signing algorithm not allowed")
	ErrUnknownKey            = errors.New("sdk: unknown signing key")
	ErrSignature             = errors.New("sdk: invalid signature")
	ErrExpired               = errors.New("sdk: token expired")
	ErrNotYetValid           = errors.New("sdk: token not valid yet")
	ErrWrongIssuer           = errors.New("sdk: wrong issuer")
	ErrWrongAudience         = errors.New("sdk: wrong audience")
	ErrInvalid               = errors.New("sdk: invalid claims")
	ErrRevoked               = errors.New("sdk: token revoked")
	ErrRevocationUnavailable = errors.New("sdk: revocation state unknown")
	ErrNotReady              = errors.New("sdk: no signing keys loaded yet")
	// ErrInsufficientScope is the middleware's answer to a valid token that
	// lacks a required role (RFC 6750 insufficient_scope, 403).
	ErrInsufficientScope = errors.New("sdk: insufficient scope")
)

// sentinels lists ours, for classify and Challenge.
var sentinels = []error{
	ErrMissingToken, ErrTooLarge, ErrMalformed, ErrWrongType, ErrUnsupportedAlg,
	ErrUnknownKey, ErrSignature, ErrExpired, ErrNotYetValid, ErrWrongIssuer,
	ErrWrongAudience, ErrInvalid, ErrRevoked, ErrRevocationUnavailable, ErrNotReady,
	ErrInsufficientScope,
}

// sentinel returns the first of ours that err wraps, or nil.
func sentinel(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// classify maps golang-jwt's errors onto ours, in one place. Both chains
// survive the two %w. Errors our keyfunc returned already carry one of ours:
// they are kept as they are (the parser's wrapping keeps the chain).
func classify(err error) error {
	var kind error
	switch {
	case sentinel(err) != nil:
		kind = sentinel(err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		kind = ErrMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The keyfunc's failures carry our sentinels, so this is the
		// parser refusing an alg it has no implementation of (None, NONE,
		// a missing alg, ...).
		kind = ErrUnsupportedAlg
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		kind = ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		kind = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		kind = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		kind = ErrWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		kind = ErrWrongAudience
	default: // missing required claims, Claims.Validate, ...
		kind = ErrInvalid
	}
	if errors.Is(err, kind) {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}
