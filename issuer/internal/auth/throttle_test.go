package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// recThrottle records what the Service asks and reports; it refuses the
// accounts and subjects in refuse.
type recThrottle struct {
	mu     sync.Mutex
	asked  []string // "account network" or "revoke subject"
	done   []auth.Attempt
	refuse map[string]bool
}

func (r *recThrottle) PasswordAttempt(_ context.Context, account, network string) (func(auth.Attempt), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, account+" "+network)
	if r.refuse[account] {
		return nil, &auth.RateLimitError{RetryAfter: time.Minute}
	}
	return func(a auth.Attempt) { r.mu.Lock(); r.done = append(r.done, a); r.mu.Unlock() }, nil
}

func (r *recThrottle) Revocation(_ context.Context, subject string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, "revoke "+subject)
	if r.refuse[subject] {
		return &auth.RateLimitError{RetryAfter: time.Minute}
	}
	return nil
}

// Login asks the Throttle before it checks a password, alike for known
// users (by id, whatever the spelling of the identifier) and unknown ones
// (by the normalized identifier), and reports the outcome; a refused
// attempt is not checked. Revocations ask per subject before any event.
func TestThrottle(t *testing.T) {
	f := newFixture(t)
	th := &recThrottle{refuse: map[string]bool{}}
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{},
			Events: f.events, Links: f.links, Mailer: f.mail, Throttle: th})
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw, Username: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	login := func(id, password string) error {
		_, err := svc.Login(t.Context(), auth.LoginInput{Identifier: id, Password: password, Network: "198.51.100.7"})
		return err
	}
	if err := login(" A@Example.com", pw); err != nil {
		t.Fatal(err)
	}
	if err := login("ann", "wrong password"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if err := login("Nobody@Example.com", pw); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	want := []string{"u:" + u.ID + " 198.51.100.7", "u:" + u.ID + " 198.51.100.7", "i:nobody@example.com 198.51.100.7"}
	if strings.Join(th.asked, "|") != strings.Join(want, "|") ||
		len(th.done) != 3 || th.done[0] != auth.AttemptMatched || th.done[1] != auth.AttemptFailed || th.done[2] != auth.AttemptFailed {
		t.Fatalf("asked %q, outcomes %v; want %q, matched, failed, failed", th.asked, th.done, want)
	}

	th.refuse["u:"+u.ID], th.refuse["i:ghost"] = true, true
	dummies := f.hasher.dummies
	for _, id := range []string{"a@example.com", "ghost"} {
		var rle *auth.RateLimitError
		if err := login(id, pw); !errors.As(err, &rle) || !errors.Is(err, auth.ErrRateLimited) || rle.RetryAfter != time.Minute {
			t.Fatalf("refused login of %s: %v", id, err)
		}
	}
	if f.hasher.dummies != dummies || len(th.done) != 3 {
		t.Fatal("a refused attempt was checked")
	}
	if err := login(strings.Repeat("x", 321), pw); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("a 321-character identifier: %v, want ErrInvalidInput before any lookup", err)
	}

	// Revocations: refused for a subject over its limit, before any event.
	th.refuse["u:"+u.ID] = false
	tok, err := svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	th.refuse[u.ID] = true
	events := len(f.events.evs)
	if err := svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: tok.RefreshToken}); !errors.Is(err, auth.ErrRateLimited) {
		t.Fatalf("logout over the subject's limit: %v", err)
	}
	if err := svc.RevokeToken(t.Context(), tok.AccessToken, "access_token"); !errors.Is(err, auth.ErrRateLimited) {
		t.Fatalf("revoke over the subject's limit: %v", err)
	}
	if len(f.events.evs) != events {
		t.Fatal("an event was emitted over the subject's limit")
	}
	th.refuse[u.ID] = false
	if err := svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: tok.RefreshToken}); err != nil || len(f.events.evs) != events+1 {
		t.Fatalf("logout: %v", err)
	}
}

func (r *recThrottle) Mail(_ context.Context, recipient string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, "mail "+recipient)
	if r.refuse[recipient] {
		return &auth.RateLimitError{RetryAfter: time.Minute}
	}
	return nil
}
