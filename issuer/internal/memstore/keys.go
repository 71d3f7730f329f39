package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Keys implements auth.KeyStore.
type Keys struct {
	mu   sync.Mutex
	keys []auth.SigningKey // by generation
}

var _ auth.KeyStore = (*Keys)(nil)

// NewKeys returns an empty store.
func NewKeys() *Keys { return &Keys{} }

// Keys implements auth.KeyStore.
func (s *Keys) Keys(context.Context) ([]auth.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]auth.SigningKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = copyKey(k)
	}
	return out, nil
}

// Insert implements auth.KeyStore.
func (s *Keys) Insert(_ context.Context, k auth.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.keys {
		if o.Gen == k.Gen || o.KID == k.KID {
			return auth.ErrConflict
		}
	}
	s.keys = append(s.keys, copyKey(k))
	slices.SortFunc(s.keys, func(a, b auth.SigningKey) int { return cmp.Compare(a.Gen, b.Gen) })
	return nil
}

// Retire implements auth.KeyStore.
func (s *Keys) Retire(_ context.Context, gen int64, retireAt, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].Gen == gen {
			s.keys[i].RetireAt, s.keys[i].ExpiresAt = &retireAt, &expiresAt
		}
	}
	return nil
}

// DeleteExpired implements auth.KeyStore.
func (s *Keys) DeleteExpired(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = slices.DeleteFunc(s.keys, func(k auth.SigningKey) bool {
		return k.ExpiresAt != nil && !k.ExpiresAt.After(now)
	})
	return nil
}

// copyKey returns k sharing nothing with it, as if stored and read back.
func copyKey(k auth.SigningKey) auth.SigningKey {
	k.PublicKey, k.PrivateKey = slices.Clone(k.PublicKey), slices.Clone(k.PrivateKey)
	if k.RetireAt != nil {
		r := *k.RetireAt
		k.RetireAt = &r
	}
	if k.ExpiresAt != nil {
		e := *k.ExpiresAt
		k.ExpiresAt = &e
	}
	return k
}
