package memstore

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// LinkTokens implements auth.LinkTokens, keyed like the real store by the
// SHA-256 of the token.
type LinkTokens struct {
	mu     sync.Mutex
	tokens map[[32]byte]auth.LinkToken
}

var _ auth.LinkTokens = (*LinkTokens)(nil)

// NewLinkTokens returns an empty store.
func NewLinkTokens() *LinkTokens { return &LinkTokens{tokens: map[[32]byte]auth.LinkToken{}} }

// Create implements auth.LinkTokens.
func (s *LinkTokens) Create(_ context.Context, token string, t auth.LinkToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := sha256.Sum256([]byte(token))
	if _, ok := s.tokens[h]; ok {
		return auth.ErrConflict
	}
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Millisecond)
	s.tokens[h] = t
	return nil
}

// Peek implements auth.LinkTokens.
func (s *LinkTokens) Peek(_ context.Context, token, purpose string, now time.Time) (auth.LinkToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[sha256.Sum256([]byte(token))]
	if !ok || t.Purpose != purpose || !now.Before(t.ExpiresAt) {
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	}
	return t, nil
}

// Consume implements auth.LinkTokens.
func (s *LinkTokens) Consume(_ context.Context, token, purpose string, now time.Time) (auth.LinkToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := sha256.Sum256([]byte(token))
	t, ok := s.tokens[h]
	switch {
	case !ok || t.Purpose != purpose:
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	case !now.Before(t.ExpiresAt):
		delete(s.tokens, h)
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	}
	delete(s.tokens, h)
	return t, nil
}

// DeleteExpired implements auth.LinkTokens.
func (s *LinkTokens) DeleteExpired(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.tokens {
		if !now.Before(t.ExpiresAt) {
			delete(s.tokens, h)
		}
	}
	return nil
}

// Len counts the stored tokens, expired ones included: for tests.
func (s *LinkTokens) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}
