package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// RunKeyStore checks the auth.KeyStore contract. newStore returns a fresh,
// empty store.
func RunKeyStore(t *testing.T, newStore func(t *testing.T) auth.KeyStore) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	key := func(gen int64) auth.SigningKey {
		priv := make([]byte, 48) // random bytes: not valid UTF-8, like ciphertext
		_, _ = rand.Read(priv)
		return auth.SigningKey{KID: fmt.Sprintf("kid-%d-%s", gen, rand.Text()), Gen: gen, Alg: "ES256",
			PublicKey: []byte{0x30, 0x59, 0x00, 0xff, byte(gen)}, PrivateKey: priv,
			CreatedAt: t0.Add(time.Duration(gen) * time.Hour), NotBefore: t0.Add(time.Duration(gen)*time.Hour + time.Minute)}
	}
	keys := func(t *testing.T, s auth.KeyStore) []auth.SigningKey {
		t.Helper()
		ks, err := s.Keys(t.Context())
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		return ks
	}
	gens := func(ks []auth.SigningKey) []int64 {
		out := []int64{}
		for _, k := range ks {
			out = append(out, k.Gen)
		}
		return out
	}
	insert := func(t *testing.T, s auth.KeyStore, ks ...auth.SigningKey) {
		t.Helper()
		for _, k := range ks {
			if err := s.Insert(t.Context(), k); err != nil {
				t.Fatalf("Insert generation %d: %v", k.Gen, err)
			}
		}
	}

	t.Run("EmptyStoreHasNoKeys", func(t *testing.T) {
		if ks := keys(t, newStore(t)); len(ks) != 0 {
			t.Fatalf("Keys() = %+v on an empty store", ks)
		}
	})
	t.Run("EveryFieldRoundTrips", func(t *testing.T) {
		s := newStore(t)
		plain, retired := key(1), key(2)
		retired.Alg, retired.Encrypted = "EdDSA", true
		r, e := t0.Add(5*time.Hour), t0.Add(6*time.Hour+time.Millisecond)
		retired.RetireAt, retired.ExpiresAt = &r, &e
		insert(t, s, plain, retired)
		got := keys(t, s)
		if len(got) != 2 {
			t.Fatalf("Keys() = %d keys, want 2", len(got))
		}
		for i, want := range []auth.SigningKey{plain, retired} {
			if diff := keyDiff(got[i], want); diff != "" {
				t.Errorf("generation %d read back differs: %s", want.Gen, diff)
			}
		}
	})
	t.Run("KeysComeByGeneration", func(t *testing.T) {
		s := newStore(t)
		insert(t, s, key(3), key(1), key(10), key(2))
		if got := gens(keys(t, s)); fmt.Sprint(got) != "[1 2 3 10]" {
			t.Fatalf("Keys() generations %v, want [1 2 3 10]", got)
		}
	})
	t.Run("StoredGenerationConflicts", func(t *testing.T) {
		s := newStore(t)
		first := key(1)
		insert(t, s, first)
		if err := s.Insert(t.Context(), key(1)); !errors.Is(err, auth.ErrConflict) {
			t.Fatalf("a second key of generation 1: %v, want ErrConflict", err)
		}
		sameKID := key(2)
		sameKID.KID = first.KID
		if err := s.Insert(t.Context(), sameKID); !errors.Is(err, auth.ErrConflict) {
			t.Fatalf("a stored kid as generation 2: %v, want ErrConflict", err)
		}
		if got := keys(t, s); len(got) != 1 || got[0].KID != first.KID {
			t.Fatalf("after the conflicts Keys() = %+v, want only the first key", got)
		}
	})
	t.Run("RacingReplicasInsertOneGeneration", func(t *testing.T) {
		s := newStore(t)
		insert(t, s, key(1))
		const replicas = 8
		var mu sync.Mutex
		var winners []string
		conflicts := 0
		var wg sync.WaitGroup
		for range replicas {
			wg.Go(func() {
				k := key(2)
				err := s.Insert(t.Context(), k)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, k.KID)
				case errors.Is(err, auth.ErrConflict):
					conflicts++
				default:
					t.Errorf("Insert: %v", err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 || conflicts != replicas-1 {
			t.Fatalf("%d replicas inserting generation 2: %d won, %d got ErrConflict; want 1 and %d",
				replicas, len(winners), conflicts, replicas-1)
		}
		got := keys(t, s)
		if len(got) != 2 || got[1].Gen != 2 || got[1].KID != winners[0] {
			t.Fatalf("Keys() = %v generations, want 1 and the winner's 2", gens(got))
		}
	})
	t.Run("RetireSetsOneGeneration", func(t *testing.T) {
		s := newStore(t)
		insert(t, s, key(1), key(2))
		r, e := t0.Add(2*time.Hour), t0.Add(3*time.Hour)
		if err := s.Retire(t.Context(), 1, r, e); err != nil {
			t.Fatalf("Retire: %v", err)
		}
		if err := s.Retire(t.Context(), 7, r, e); err != nil {
			t.Fatalf("Retire of a generation not stored: %v, want no error", err)
		}
		got := keys(t, s)
		switch {
		case len(got) != 2:
			t.Fatalf("Keys() = %v generations, want 2 keys", gens(got))
		case got[0].RetireAt == nil || !got[0].RetireAt.Equal(r) || got[0].ExpiresAt == nil || !got[0].ExpiresAt.Equal(e):
			t.Errorf("retired generation 1: retire_at %v expires_at %v, want %v and %v", got[0].RetireAt, got[0].ExpiresAt, r, e)
		case got[1].RetireAt != nil || got[1].ExpiresAt != nil:
			t.Errorf("generation 2 was retired too: %v %v", got[1].RetireAt, got[1].ExpiresAt)
		}
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		s := newStore(t)
		now := t0.Add(100 * time.Hour)
		at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
		past, exact, future, current := key(1), key(2), key(3), key(4)
		past.ExpiresAt, exact.ExpiresAt, future.ExpiresAt = at(-time.Hour), at(0), at(time.Millisecond)
		insert(t, s, past, exact, future, current)
		if err := s.DeleteExpired(t.Context(), now); err != nil {
			t.Fatalf("DeleteExpired: %v", err)
		}
		if got := gens(keys(t, s)); fmt.Sprint(got) != "[3 4]" {
			t.Fatalf("after DeleteExpired: generations %v, want [3 4] (expired at or before now gone)", got)
		}
		// A deleted key's generation is free again (after every key expired,
		// the next key is generation 1 once more).
		if err := s.Insert(t.Context(), key(1)); err != nil {
			t.Fatalf("Insert of a deleted generation: %v", err)
		}
	})
}

// keyDiff describes how got differs from want; "" when equal.
func keyDiff(got, want auth.SigningKey) string {
	timeEq := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	switch {
	case got.KID != want.KID || got.Gen != want.Gen || got.Alg != want.Alg || got.Encrypted != want.Encrypted:
		return fmt.Sprintf("kid/gen/alg/encrypted %s %d %s %v, want %s %d %s %v",
			got.KID, got.Gen, got.Alg, got.Encrypted, want.KID, want.Gen, want.Alg, want.Encrypted)
	case !bytes.Equal(got.PublicKey, want.PublicKey) || !bytes.Equal(got.PrivateKey, want.PrivateKey):
		return fmt.Sprintf("key bytes %x / %x, want %x / %x", got.PublicKey, got.PrivateKey, want.PublicKey, want.PrivateKey)
	case !got.CreatedAt.Equal(want.CreatedAt) || !got.NotBefore.Equal(want.NotBefore):
		return fmt.Sprintf("created %v not_before %v, want %v %v", got.CreatedAt, got.NotBefore, want.CreatedAt, want.NotBefore)
	case !timeEq(got.RetireAt, want.RetireAt) || !timeEq(got.ExpiresAt, want.ExpiresAt):
		return fmt.Sprintf("retire_at %v expires_at %v, want %v %v", got.RetireAt, got.ExpiresAt, want.RetireAt, want.ExpiresAt)
	}
	return ""
}
