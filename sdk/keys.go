package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/cenkalti/backoff/v5"
	"github.com/golang-jwt/jwt/v5"
)

// KeySource supplies the issuer's public keys. A Verifier checks access
// tokens with it, and hands the same source to its revocation source, so
// events are authenticated by exactly the keys that authenticate tokens.
//
// Two sources come with the sdk: the issuer's JWKS over HTTP (the default,
// from Config.JWKSURL), and NewLocalKeys, a key set held in the process
// (the issuer verifies its own tokens with it).
type KeySource interface {
	// Key returns the public key for a JWS whose header names it (kid, and
	// alg when the key declares one). Its errors wrap ErrUnknownKey, or
	// ErrNotReady while no key set has been loaded.
	Key(ctx context.Context, t *jwt.Token) (any, error)
	// Ready is nil once a key set with at least one key is loaded.
	Ready() error
	// Wait returns nil once Ready is nil, or ctx's error.
	Wait(ctx context.Context) error
	// Refresh makes sure the key set is fresh, for a caller that met a kid
	// it does not know and must not give up on it (a revocation event): nil
	// means the set was loaded successfully within about the last second,
	// by this call or another, so a key the issuer published before then
	// is in it; an error means no fresh set could be had.
	Refresh(ctx context.Context) error
}

// EventTrust is what authenticates a revocation event: the keys, issuer,
// audiences and algorithms of the access tokens it revokes. A Verifier gives
// its own to its RevocationSource.
type EventTrust struct {
	Keys       KeySource
	Issuer     string
	Audience   []string
	Algorithms []string
	// Retention is how long a revocation must be kept: the longest token
	// lifetime the Verifier accepts plus twice its leeway.
	Retention time.Duration
}

// RevocationSource is a RevocationChecker fed in the background, such as
// kafkafeed.Feed. NewVerifier runs it with the Verifier's EventTrust until
// NewVerifier's context is done, so no caller wires keys into it by hand.
type RevocationSource interface {
	RevocationChecker
	// Run feeds the source until ctx is done. It authenticates events with
	// trust and waits for trust.Keys to be loaded before it verifies one.
	Run(ctx context.Context, trust EventTrust) error
	// Ready is nil once Revoked can answer (for readiness).
	Ready() error
}

// LocalKeys is a KeySource over a JWKS document held in the process: the
// function returns the current key set (RFC 7517 JSON) each time a key is
// looked up, so a rotation in the process is seen at once. It is parsed
// again only when the document changes.
type LocalKeys struct {
	jwks func() []byte

	mu   sync.Mutex
	last []byte
	kf   keyfunc.Keyfunc
	n    int // keys in last
}

var _ KeySource = (*LocalKeys)(nil)

// NewLocalKeys returns a KeySource over the key set jwks returns.
func NewLocalKeys(jwks func() []byte) *LocalKeys { return &LocalKeys{jwks: jwks} }

// current parses the document if it changed since the last call.
func (l *LocalKeys) current() (keyfunc.Keyfunc, int, error) {
	raw := l.jwks()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kf != nil && bytes.Equal(raw, l.last) {
		return l.kf, l.n, nil
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: local key set: %w", ErrNotReady, err)
	}
	kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: local key set: %w", ErrNotReady, err)
	}
	l.kf, l.last, l.n = kf, bytes.Clone(raw), len(doc.Keys)
	return kf, l.n, nil
}

// Key implements KeySource.
func (l *LocalKeys) Key(ctx context.Context, t *jwt.Token) (any, error) {
	kf, n, err := l.current()
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, fmt.Errorf("%w: the local key set is empty", ErrNotReady)
	}
	key, err := kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
	}
	return key, nil
}

// Ready implements KeySource.
func (l *LocalKeys) Ready() error {
	_, n, err := l.current()
	switch {
	case err != nil:
		return err
	case n == 0:
		return fmt.Errorf("%w: the local key set is empty", ErrNotReady)
	}
	return nil
}

// Wait implements KeySource: it checks again with a growing pause (10 ms,
// doubling up to 1 s), as the document comes from a function that cannot
// say when it changes.
func (l *LocalKeys) Wait(ctx context.Context) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, l.Ready() },
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 10 * time.Millisecond, Multiplier: 2,
			MaxInterval: time.Second}),
		backoff.WithMaxElapsedTime(0)) // until ctx ends
	return err
}

// Refresh implements KeySource; the key set is read on every lookup, so it
// is always fresh.
func (l *LocalKeys) Refresh(context.Context) error { return nil }
