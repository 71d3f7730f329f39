package sdk

import "errors"

// Verify's errors wrap exactly one of these; callers use errors.Is. The texts
// are safe to show to clients.
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
)
