package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// fakeSigner "signs" by encoding the claims as JSON; fakeVerifier reads them back.
type fakeSigner struct{}

func (fakeSigner) Sign(_ context.Context, typ string, c jwt.Claims) (string, error) {
	b, err := json.Marshal(c)
	return typ + "|" + string(b), err
}

type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, tok string) (*sdk.Claims, error) {
	typ, body, ok := strings.Cut(tok, "|")
	if !ok || typ != sdk.TokenType {
		return nil, sdk.ErrMalformed
	}
	var c sdk.Claims
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return nil, sdk.ErrMalformed
	}
	return &c, nil
}

type fakeEvents struct {
	mu   sync.Mutex
	evs  []revocation.Event
	fail error
}

func (f *fakeEvents) Publish(_ context.Context, evs ...revocation.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.evs = append(f.evs, evs...)
	return nil
}

// plainHasher stores "v1:"+password; a "v0:" hash asks for a rehash.
type plainHasher struct{ dummies int }

func (plainHasher) Hash(_ context.Context, p string) (string, error) { return "v1:" + p, nil }
func (plainHasher) Verify(_ context.Context, p, h string) (bool, bool, error) {
	v, pw, _ := strings.Cut(h, ":")
	return pw == p, pw == p && v != "v1", nil
}
func (h *plainHasher) Dummy(context.Context, string) error { h.dummies++; return nil }

type fixture struct {
	svc      *auth.Service
	users    *memstore.Users
	sessions *memstore.Sessions
	events   *fakeEvents
	hasher   *plainHasher
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{users: memstore.NewUsers(), sessions: memstore.NewSessions(time.Minute, nil),
		events: &fakeEvents{}, hasher: &plainHasher{}}
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{}, Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

const pw = "long enough password"

func TestRegisterValidation(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "bad", Password: "short"})
	var v *auth.ValidationError
	if !errors.As(err, &v) || len(v.Fields) != 2 || !errors.Is(err, auth.ErrWeakPassword) || !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("Register: %v", err)
	}
	// 12 characters after NFKC: the ligature "ﬁ" counts as two.
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: "ﬁﬁﬁﬁﬁﬁ"}); err != nil {
		t.Fatalf("NFKC length: %v", err)
	}
	if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: " A@Example.com", Password: pw}); !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("normalized duplicate: %v", err)
	}
}

func TestLoginMintsClaimsAndRehashes(t *testing.T) {
	f := newFixture(t)
	u, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.users.SetPasswordHash(t.Context(), u.ID, "v0:"+pw)
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "A@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fakeVerifier{}.Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != u.ID || c.SessionID != tok.Session.ID || c.ID == "" || c.Issuer != "https://iss" ||
		c.ExpiresAt.Sub(c.IssuedAt.Time) != 5*time.Minute || c.ClientID != "jotguard" {
		t.Fatalf("claims %+v", c)
	}
	if got, _ := f.users.ByID(t.Context(), u.ID); got.PasswordHash != "v1:"+pw {
		t.Fatalf("not rehashed: %q", got.PasswordHash)
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "nobody@example.com", Password: pw}); !errors.Is(err, auth.ErrInvalidCredentials) || f.hasher.dummies != 1 {
		t.Fatalf("unknown user: %v, dummy hashes %d", err, f.hasher.dummies)
	}
}

func TestLogoutEventsBeforeDelete(t *testing.T) {
	f := newFixture(t)
	u, _ := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	var toks []auth.Tokens
	for range 3 {
		tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	// Kafka and the outbox both failing: the logout fails and nothing is deleted.
	f.events.fail = errors.New("down")
	err := f.svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: toks[0].RefreshToken, Scope: auth.ScopeGlobal})
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Logout with events down: %v", err)
	}
	if sids, _ := f.sessions.List(t.Context(), u.ID); len(sids) != 3 {
		t.Fatalf("sessions deleted without their events: %v", sids)
	}
	f.events.fail = nil
	if err := f.svc.Logout(t.Context(), auth.LogoutInput{AccessToken: toks[0].AccessToken, Scope: auth.ScopeOthers}); err != nil {
		t.Fatal(err)
	}
	if len(f.events.evs) != 2 {
		t.Fatalf("events %+v, want one per other session", f.events.evs)
	}
	for _, e := range f.events.evs {
		if e.Subject != u.ID || e.SessionID == toks[0].Session.ID || e.SessionID == "" || e.Reason != revocation.ReasonLogoutGlobal || e.ID == "" {
			t.Fatalf("event %+v", e)
		}
	}
	if err := f.svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: toks[0].RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if last := f.events.evs[len(f.events.evs)-1]; last.SessionID != toks[0].Session.ID || last.Reason != revocation.ReasonLogout {
		t.Fatalf("local logout event %+v", last)
	}
	if err := f.svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: toks[0].RefreshToken}); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("second logout: %v", err)
	}
}

func TestRefreshReuseEmitsEvent(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.sessions = memstore.NewSessions(time.Second, func() time.Time { return now })
	svc, _ := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: time.Minute},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{}, Events: f.events})
	_, _ = svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	tok, _ := svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if _, err := svc.Refresh(t.Context(), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	_, err := svc.Refresh(t.Context(), tok.RefreshToken)
	if !errors.Is(err, auth.ErrInvalidRefreshToken) || !errors.Is(err, auth.ErrRefreshReuse) {
		t.Fatalf("reuse: %v", err)
	}
	if len(f.events.evs) != 1 || f.events.evs[0].Reason != revocation.ReasonRefreshReuse || f.events.evs[0].SessionID != tok.Session.ID {
		t.Fatalf("events %+v", f.events.evs)
	}
}

func TestDisabledUser(t *testing.T) {
	f := newFixture(t)
	_ = f.users.Create(t.Context(), auth.User{ID: "u1", Email: "d@example.com", PasswordHash: "v1:" + pw, Disabled: true})
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "d@example.com", Password: pw}); !errors.Is(err, auth.ErrDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "d@example.com", Password: "wrong password"}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("disabled, wrong password: %v (must not reveal the account state)", err)
	}
}

func TestRevokeToken(t *testing.T) {
	f := newFixture(t)
	_, _ = f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	tok, _ := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err := f.svc.RevokeToken(t.Context(), "nonsense", ""); err != nil || len(f.events.evs) != 0 {
		t.Fatalf("unknown token: %v, events %v", err, f.events.evs)
	}
	if err := f.svc.RevokeToken(t.Context(), auth.NewRefreshToken(), "refresh_token"); err != nil || len(f.events.evs) != 0 {
		t.Fatalf("unknown refresh token: %v, events %v", err, f.events.evs)
	}
	c, _ := fakeVerifier{}.Verify(t.Context(), tok.AccessToken)
	if err := f.svc.RevokeToken(t.Context(), tok.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	if len(f.events.evs) != 1 || f.events.evs[0].TokenID != c.ID || f.events.evs[0].Subject != c.Subject {
		t.Fatalf("access token revocation events %+v", f.events.evs)
	}
	if err := f.svc.RevokeToken(t.Context(), tok.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if len(f.events.evs) != 2 || f.events.evs[1].SessionID != tok.Session.ID {
		t.Fatalf("refresh token revocation events %+v", f.events.evs)
	}
	if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("refresh after revocation: %v", err)
	}
}
