package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// RunLinkTokens checks the auth.LinkTokens contract: single use under
// racing consumers, expiry, purposes.
func RunLinkTokens(t *testing.T, newStore func(t *testing.T) auth.LinkTokens) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	verify := auth.LinkToken{Purpose: auth.LinkVerifyEmail, UserID: "u1", Email: "new@example.com",
		From: "old@example.com", ExpiresAt: now.Add(time.Hour)}
	t.Run("CreatePeekConsume", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		tok := auth.NewLinkToken()
		if err := s.Create(ctx, tok, verify); err != nil {
			t.Fatal(err)
		}
		for range 2 { // Peek uses nothing up
			if got, err := s.Peek(ctx, tok, auth.LinkVerifyEmail, now); err != nil || got != verify {
				t.Fatalf("Peek = %+v, %v; want %+v", got, err, verify)
			}
		}
		got, err := s.Consume(ctx, tok, auth.LinkVerifyEmail, now)
		if err != nil || got != verify {
			t.Fatalf("Consume = %+v, %v; want %+v", got, err, verify)
		}
		if _, err := s.Consume(ctx, tok, auth.LinkVerifyEmail, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("second Consume: %v, want ErrInvalidLinkToken", err)
		}
		if _, err := s.Peek(ctx, tok, auth.LinkVerifyEmail, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek of a used token: %v, want ErrInvalidLinkToken", err)
		}
		unknown := auth.NewLinkToken()
		if _, err := s.Consume(ctx, unknown, auth.LinkVerifyEmail, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Consume(unknown): %v", err)
		}
		if _, err := s.Peek(ctx, unknown, auth.LinkVerifyEmail, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek(unknown): %v", err)
		}
		// A used token may be put back (after a request failed midway).
		if err := s.Create(ctx, tok, verify); err != nil {
			t.Fatalf("Create of a used token: %v", err)
		}
		if _, err := s.Consume(ctx, tok, auth.LinkVerifyEmail, now); err != nil {
			t.Fatalf("Consume of a restored token: %v", err)
		}
	})
	t.Run("PurposeMismatchLeavesTheToken", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		tok := auth.NewLinkToken()
		if err := s.Create(ctx, tok, verify); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Consume(ctx, tok, auth.LinkResetPassword, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Consume for another purpose: %v, want ErrInvalidLinkToken", err)
		}
		if _, err := s.Peek(ctx, tok, auth.LinkResetPassword, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek for another purpose: %v, want ErrInvalidLinkToken", err)
		}
		if _, err := s.Consume(ctx, tok, auth.LinkVerifyEmail, now); err != nil {
			t.Fatalf("Consume for its purpose after a mismatch: %v", err)
		}
	})
	t.Run("Expiry", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		tok, live := auth.NewLinkToken(), auth.NewLinkToken()
		reset := auth.LinkToken{Purpose: auth.LinkResetPassword, UserID: "u1", Email: "a@example.com", ExpiresAt: now.Add(time.Minute)}
		if err := s.Create(ctx, tok, reset); err != nil {
			t.Fatal(err)
		}
		later := reset
		later.ExpiresAt = now.Add(time.Hour)
		if err := s.Create(ctx, live, later); err != nil {
			t.Fatal(err)
		}
		at := reset.ExpiresAt // expired at its expiry instant
		if _, err := s.Peek(ctx, tok, auth.LinkResetPassword, at); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek at expiry: %v, want ErrInvalidLinkToken", err)
		}
		if _, err := s.Consume(ctx, tok, auth.LinkResetPassword, at); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Consume at expiry: %v, want ErrInvalidLinkToken", err)
		}
		// The expired token was deleted: not even an earlier clock finds it.
		if _, err := s.Peek(ctx, tok, auth.LinkResetPassword, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek after an expired Consume: %v, want ErrInvalidLinkToken", err)
		}
		if err := s.Create(ctx, tok, reset); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteExpired(ctx, at); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Peek(ctx, tok, auth.LinkResetPassword, now); !errors.Is(err, auth.ErrInvalidLinkToken) {
			t.Fatalf("Peek after DeleteExpired: %v, want ErrInvalidLinkToken", err)
		}
		if got, err := s.Peek(ctx, live, auth.LinkResetPassword, at); err != nil || !got.ExpiresAt.Equal(later.ExpiresAt) {
			t.Fatalf("DeleteExpired took a live token: %+v, %v", got, err)
		}
	})
	t.Run("RacingConsumersHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for round := range 5 {
			tok := auth.NewLinkToken()
			if err := s.Create(ctx, tok, verify); err != nil {
				t.Fatal(err)
			}
			t.Logf("round %d", round)
			OneWinner(t, 16, auth.ErrInvalidLinkToken, func(int) error {
				_, err := s.Consume(ctx, tok, auth.LinkVerifyEmail, now)
				return err
			})
		}
	})
}
