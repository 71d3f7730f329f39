package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// recMailer records what the Service mails (unit tests only: the
// integration tests read real mail from Mailpit).
type recMailer struct {
	mu   sync.Mutex
	sent []auth.Mail
	fail error
}

func (m *recMailer) Send(_ context.Context, ml auth.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, ml)
	return nil
}

// last returns the last mail of template to to, failing the test if none.
func (m *recMailer) last(t *testing.T, to, template string) auth.Mail {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.sent) - 1; i >= 0; i-- {
		if ml := m.sent[i]; ml.To == to && ml.Template == template {
			return ml
		}
	}
	t.Fatalf("no %s mail to %s among %d", template, to, len(m.sent))
	return auth.Mail{}
}

// count counts the mails of template to to.
func (m *recMailer) count(to, template string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ml := range m.sent {
		if ml.To == to && ml.Template == template {
			n++
		}
	}
	return n
}

type fixture struct {
	svc      *auth.Service
	users    *memstore.Users
	sessions *memstore.Sessions
	events   *fakeEvents
	hasher   *plainHasher
	links    *memstore.LinkTokens
	mail     *recMailer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{users: memstore.NewUsers(), sessions: memstore.NewSessions(time.Minute, nil),
		events: &fakeEvents{}, hasher: &plainHasher{}, links: memstore.NewLinkTokens(), mail: &recMailer{}}
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{}, Events: f.events, Links: f.links, Mailer: f.mail})
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
	if !errors.As(err, &v) || len(v.Fields) != 2 || errors.Is(err, auth.ErrWeakPassword) || !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("Register with a bad email and a short password: %v, want invalid input (not weak_password: the email failed too)", err)
	}
	_, err = f.svc.Register(t.Context(), auth.RegisterInput{Email: "ok@example.com", Password: "short"})
	if !errors.As(err, &v) || len(v.Fields) != 1 || !errors.Is(err, auth.ErrWeakPassword) || !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("Register with a short password: %v, want weak password", err)
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
	f.events.fail = fmt.Errorf("kafka and outbox down: %w", auth.ErrUnavailable)
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
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{}, Events: f.events, Links: f.links, Mailer: f.mail})
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

// The access token of an ended session ends nothing more and emits
// nothing, by any path, even where the token still verifies (here: always;
// in the issuer: until its revocation feed has the session's event).
func TestDeadSessionTokensEmitNothing(t *testing.T) {
	f := newFixture(t)
	_, _ = f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw})
	tok, _ := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	other, _ := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err := f.svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	for _, scope := range []auth.Scope{auth.ScopeLocal, auth.ScopeGlobal, auth.ScopeOthers} {
		err := f.svc.Logout(t.Context(), auth.LogoutInput{AccessToken: tok.AccessToken, Scope: scope})
		if !errors.Is(err, auth.ErrInvalidAccessToken) {
			t.Errorf("logout %s with the ended session's access token: %v, want ErrInvalidAccessToken", scope, err)
		}
	}
	if err := f.svc.RevokeToken(t.Context(), tok.AccessToken, "access_token"); err != nil {
		t.Errorf("revoke the ended session's access token: %v", err)
	}
	if err := f.svc.RevokeToken(t.Context(), tok.RefreshToken, ""); err != nil {
		t.Errorf("revoke the ended session's refresh token: %v", err)
	}
	if len(f.events.evs) != 1 || f.events.evs[0].SessionID != tok.Session.ID {
		t.Fatalf("events %+v, want only the logout's", f.events.evs)
	}
	if sids, _ := f.sessions.List(t.Context(), tok.User.ID); len(sids) != 1 || sids[0].ID != other.Session.ID {
		t.Fatalf("sessions %v, want the other one alive", sids)
	}
}

// countingUsers counts the reads of a user by id; its ByID answers as if
// the user had been disabled or deleted, or the store were down.
type countingUsers struct {
	auth.UserStore
	mu       sync.Mutex
	byID     int
	disabled bool
	fails    error
}

func (c *countingUsers) ByID(ctx context.Context, id string) (auth.User, error) {
	c.mu.Lock()
	c.byID++
	disabled, err := c.disabled, c.fails
	c.mu.Unlock()
	if err != nil {
		return auth.User{}, err
	}
	u, err := c.UserStore.ByID(ctx, id)
	u.Disabled = u.Disabled || disabled
	return u, err
}

func (c *countingUsers) set(disabled bool, fails error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.disabled, c.fails = disabled, fails
}

func (c *countingUsers) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID
}

// snapshotFixture is a Service whose refreshes trust the session's user
// snapshot for recheck, on a clock the test moves.
func snapshotFixture(t *testing.T, recheck time.Duration) (*fixture, *countingUsers, *time.Time) {
	f := newFixture(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { return now }
	users := &countingUsers{UserStore: f.users}
	f.sessions = memstore.NewSessions(time.Second, clock)
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute,
		UserRecheck: recheck, Now: clock},
		auth.Deps{Users: users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{}, Events: f.events, Links: f.links, Mailer: f.mail})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f, users, &now
}

// A refresh within UserRecheck mints from the session's snapshot: no read
// of the UserStore, yet the same claims and user as after a read.
func TestRefreshWithinRecheckReadsNoUser(t *testing.T) {
	f, users, now := snapshotFixture(t, time.Minute)
	u := auth.User{ID: "u1", Email: "a@example.com", Username: "ann", FirstName: "Ann", PasswordHash: "v1:" + pw,
		EmailVerified: true, Roles: []string{"admin"}, CreatedAt: now.Add(-time.Hour)}
	if err := f.users.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	rt := tok.RefreshToken
	for i := range 3 {
		*now = now.Add(15 * time.Second)
		tok, err = f.svc.Refresh(t.Context(), rt)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		rt = tok.RefreshToken
	}
	if n := users.reads(); n != 0 {
		t.Fatalf("refreshes within the recheck window read the user %d times, want 0", n)
	}
	c, _ := fakeVerifier{}.Verify(t.Context(), tok.AccessToken)
	if c.Subject != "u1" || c.Email != u.Email || !c.EmailVerified || len(c.Roles) != 1 || c.Roles[0] != "admin" {
		t.Fatalf("claims from the snapshot: %+v", c)
	}
	if got := tok.User; got.ID != u.ID || got.Username != "ann" || got.FirstName != "Ann" || !got.CreatedAt.Equal(u.CreatedAt) || got.PasswordHash != "" {
		t.Fatalf("user from the snapshot: %+v", got)
	}

	// Past the window the user is read once, and the fresh snapshot serves
	// the refreshes after it.
	*now = now.Add(time.Minute)
	for i := range 2 {
		if tok, err = f.svc.Refresh(t.Context(), rt); err != nil {
			t.Fatalf("refresh %d after the window: %v", i, err)
		}
		rt = tok.RefreshToken
	}
	if n := users.reads(); n != 1 {
		t.Fatalf("refreshes after the window read the user %d times, want 1", n)
	}
}

// Disabling a user takes effect at the first refresh past the recheck
// window, and at once with UserRecheck 0; a user the store no longer has
// makes the refresh token invalid; a store that is down is unavailable.
func TestRefreshRechecksUser(t *testing.T) {
	setup := func(t *testing.T, recheck time.Duration) (*fixture, *countingUsers, *time.Time, string) {
		f, users, now := snapshotFixture(t, recheck)
		if _, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: "a@example.com", Password: pw}); err != nil {
			t.Fatal(err)
		}
		tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "a@example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return f, users, now, tok.RefreshToken
	}
	t.Run("DisabledAfterWindow", func(t *testing.T) {
		f, users, now, rt := setup(t, time.Minute)
		users.set(true, nil)
		*now = now.Add(30 * time.Second)
		tok, err := f.svc.Refresh(t.Context(), rt)
		if err != nil {
			t.Fatalf("refresh within the window: %v (the snapshot still says enabled)", err)
		}
		*now = now.Add(31 * time.Second)
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrDisabled) {
			t.Fatalf("first refresh past the window: %v, want ErrDisabled", err)
		}
	})
	t.Run("DisabledRecheckZero", func(t *testing.T) {
		f, users, _, rt := setup(t, 0)
		tok, err := f.svc.Refresh(t.Context(), rt)
		if err != nil || users.reads() != 1 {
			t.Fatalf("refresh: %v, %d reads; want one read", err, users.reads())
		}
		users.set(true, nil)
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrDisabled) {
			t.Fatalf("refresh of a disabled user with UserRecheck 0: %v, want ErrDisabled", err)
		}
	})
	t.Run("UserGone", func(t *testing.T) {
		f, users, _, rt := setup(t, 0)
		users.set(false, auth.ErrUserNotFound)
		if _, err := f.svc.Refresh(t.Context(), rt); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("refresh of a deleted user: %v, want ErrInvalidRefreshToken", err)
		}
	})
	t.Run("StoreDown", func(t *testing.T) {
		f, users, now, rt := setup(t, time.Minute)
		users.set(false, auth.ErrUnavailable)
		tok, err := f.svc.Refresh(t.Context(), rt)
		if err != nil {
			t.Fatalf("refresh within the window with the store down: %v", err)
		}
		*now = now.Add(2 * time.Minute)
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("refresh past the window with the store down: %v, want ErrUnavailable", err)
		}
	})
}
