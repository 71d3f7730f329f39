package auth_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// syncAudit records synchronously into a memstore log, for unit tests
// (the issuer's audit.Recorder writes behind the requests).
type syncAudit struct {
	*memstore.AuditLog
	mu sync.Mutex
	n  int
}

func (a *syncAudit) Record(ctx context.Context, e auth.AuditEntry) {
	a.mu.Lock()
	a.n++
	e.ID = fmt.Sprintf("%06d", a.n) // in the order recorded
	a.mu.Unlock()
	_ = a.Append(ctx, e)
}

// types lists the types of the entries about id, oldest first.
func (a *syncAudit) types(t *testing.T, id string) []string {
	t.Helper()
	es, err := a.List(t.Context(), auth.AuditQuery{UserID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Type)
	}
	return out
}

type adminFixture struct {
	*fixture
	clients *memstore.Clients
	audit   *syncAudit
}

func newAdminFixture(t *testing.T) *adminFixture {
	f := &adminFixture{fixture: newFixture(t), clients: memstore.NewClients(), audit: &syncAudit{AuditLog: memstore.NewAuditLog()}}
	svc, err := auth.NewService(auth.Config{Issuer: "https://iss", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute},
		auth.Deps{Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Signer: fakeSigner{}, Verifier: fakeVerifier{},
			Events: f.events, Links: f.links, Mailer: f.mail, Clients: f.clients, Audit: f.audit})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// user registers email and logs in.
func (f *adminFixture) user(t *testing.T, email string) (auth.User, auth.Tokens) {
	t.Helper()
	u, err := f.svc.Register(t.Context(), auth.RegisterInput{Email: email, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: email, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return u, tok
}

// admin returns the Admin of a fresh user with the admin role.
func (f *adminFixture) admin(t *testing.T) (auth.Admin, auth.Tokens) {
	t.Helper()
	u, err := f.svc.CreateUser(t.Context(), auth.CommandLine(), auth.RegisterInput{Email: "root@example.com", Password: pw},
		[]string{auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !u.EmailVerified || !slices.Equal(u.Roles, []string{auth.RoleAdmin}) {
		t.Fatalf("CreateUser = %+v", u)
	}
	tok, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "root@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Admin(t.Context(), tok.AccessToken)
	if err != nil || a.ID() != u.ID {
		t.Fatalf("Admin = %v, %v", a, err)
	}
	return a, tok
}

// userEvents returns the events about sub.
func (f *adminFixture) userEvents(sub string) []revocation.Event {
	f.events.mu.Lock()
	defer f.events.mu.Unlock()
	var out []revocation.Event
	for _, e := range f.events.evs {
		if e.Subject == sub {
			out = append(out, e)
		}
	}
	return out
}

func TestAdminNeedsTheRoleInTokenAndAccount(t *testing.T) {
	f := newAdminFixture(t)
	a, adminTok := f.admin(t)
	_, tok := f.user(t, "ann@example.com")
	if _, err := f.svc.Admin(t.Context(), tok.AccessToken); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("a user without the role: %v, want ErrForbidden", err)
	}
	if _, err := f.svc.Admin(t.Context(), "garbage"); !errors.Is(err, auth.ErrInvalidAccessToken) {
		t.Fatalf("garbage: %v, want ErrInvalidAccessToken", err)
	}
	// Demoted: the token still says admin, the account no longer does.
	if _, err := f.svc.UpdateUser(t.Context(), a, a.ID(), auth.UserUpdate{Roles: &[]string{"user"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin(t.Context(), adminTok.AccessToken); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("a demoted admin's old token: %v, want ErrForbidden", err)
	}
	// A service account with the role is an administrator too, until deleted.
	c, secret, err := f.svc.CreateClient(t.Context(), auth.CommandLine(), "ops robot", []string{auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	svcTok, err := f.svc.ClientToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := f.svc.Admin(t.Context(), svcTok.AccessToken)
	if err != nil || sa.ID() != c.ID {
		t.Fatalf("a service account admin: %v, %v", sa, err)
	}
	if err := f.svc.DeleteClient(t.Context(), sa, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin(t.Context(), svcTok.AccessToken); !errors.Is(err, auth.ErrInvalidAccessToken) {
		t.Fatalf("a deleted service account's token: %v, want ErrInvalidAccessToken", err)
	}
}

// Disabling: one user-wide event, refreshes and logins refused with
// ErrDisabled; re-enabling does not bring the old sessions back.
func TestDisableAndEnable(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	u, tok := f.user(t, "ann@example.com")
	yes, no := true, false
	before := time.Now()
	got, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Disabled: &yes})
	if err != nil || !got.Disabled {
		t.Fatalf("UpdateUser = %+v, %v", got, err)
	}
	if took := time.Since(before); took > 1100*time.Millisecond {
		t.Errorf("took %s: it waits only for the end of the event's second", took)
	}
	evs := f.userEvents(u.ID)
	if len(evs) != 1 || evs[0].SessionID != "" || evs[0].Reason != revocation.ReasonAdmin || evs[0].Initiator != "admin" {
		t.Fatalf("events %+v, want one user-wide admin event", evs)
	}
	if time.Now().Truncate(time.Second).Equal(evs[0].At.Truncate(time.Second)) {
		t.Fatal("answered within the event's second: a token minted now would be revoked")
	}
	if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrDisabled) {
		t.Fatalf("refresh of a disabled user: %v, want ErrDisabled", err)
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "ann@example.com", Password: pw}); !errors.Is(err, auth.ErrDisabled) {
		t.Fatalf("login of a disabled user: %v, want ErrDisabled", err)
	}
	// Disabling again re-emits (a retry of a lost answer completes).
	if _, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Disabled: &yes}); err != nil || len(f.userEvents(u.ID)) != 2 {
		t.Fatalf("disable again: %v, %d events", err, len(f.userEvents(u.ID)))
	}
	if _, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("refresh of a session ended by the disable, after re-enabling: %v, want ErrInvalidRefreshToken", err)
	}
	if _, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "ann@example.com", Password: pw}); err != nil {
		t.Fatalf("login after re-enabling: %v", err)
	}
	want := []string{auth.AuditUserRegistered, auth.AuditLoginSucceeded, auth.AuditAdminUserUpdated,
		auth.AuditLoginFailed, auth.AuditAdminUserUpdated, auth.AuditAdminUserUpdated, auth.AuditLoginSucceeded}
	if got := f.audit.types(t, u.ID); !slices.Equal(got, want) {
		t.Fatalf("audit of the user: %v, want %v", got, want)
	}
}

// A role change: one user-wide event; the session lives on and its next
// refresh carries the new roles, in a token issued after the event's
// second.
func TestRoleChange(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	u, tok := f.user(t, "ann@example.com")
	if _, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Roles: &[]string{"editor", "bad role"}}); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("a role with a space: %v, want ErrInvalidInput", err)
	}
	got, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Roles: &[]string{"editor", "ops", "editor"}})
	if err != nil || !slices.Equal(got.Roles, []string{"editor", "ops"}) {
		t.Fatalf("UpdateUser = %+v, %v", got, err)
	}
	evs := f.userEvents(u.ID)
	if len(evs) != 1 || evs[0].SessionID != "" || evs[0].Reason != revocation.ReasonAdmin {
		t.Fatalf("events %+v", evs)
	}
	next, err := f.svc.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := fakeVerifier{}.Verify(t.Context(), next.AccessToken)
	if !slices.Equal(c.Roles, []string{"editor", "ops"}) || c.IssuedAt.Unix() <= evs[0].At.Unix() {
		t.Fatalf("refreshed claims: roles %v, iat %v (event at %v)", c.Roles, c.IssuedAt, evs[0].At)
	}
	// The same roles again, in another order: nothing to do.
	if _, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{Roles: &[]string{"ops", "editor"}}); err != nil || len(f.userEvents(u.ID)) != 1 {
		t.Fatalf("no change: %v, %d events", err, len(f.userEvents(u.ID)))
	}
	if _, err := f.svc.UpdateUser(t.Context(), a, u.ID, auth.UserUpdate{}); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("an empty change: %v, want ErrInvalidInput", err)
	}
	if _, err := f.svc.UpdateUser(t.Context(), a, "nobody", auth.UserUpdate{Roles: &[]string{}}); !errors.Is(err, auth.ErrUserNotFound) {
		t.Fatalf("unknown user: %v, want ErrUserNotFound", err)
	}
}

func TestForcedLogoutAndDelete(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	u, tok := f.user(t, "ann@example.com")
	tok2, _ := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "ann@example.com", Password: pw})
	if err := f.svc.LogoutUser(t.Context(), a, u.ID); err != nil {
		t.Fatal(err)
	}
	evs := f.userEvents(u.ID)
	sids := []string{evs[0].SessionID, evs[1].SessionID}
	slices.Sort(sids)
	want := []string{tok.Session.ID, tok2.Session.ID}
	slices.Sort(want)
	if len(evs) != 2 || !slices.Equal(sids, want) || evs[0].Reason != revocation.ReasonAdmin {
		t.Fatalf("events %+v, want one admin event per session", evs)
	}
	if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("refresh after a forced logout: %v", err)
	}
	tok3, err := f.svc.Login(t.Context(), auth.LoginInput{Identifier: "ann@example.com", Password: pw})
	if err != nil {
		t.Fatalf("login after a forced logout: %v", err)
	}
	if err := f.svc.DeleteUser(t.Context(), a, u.ID); err != nil {
		t.Fatal(err)
	}
	if evs := f.userEvents(u.ID); len(evs) != 3 || evs[2].SessionID != "" || evs[2].Reason != revocation.ReasonAccountDeleted {
		t.Fatalf("events after delete %+v", evs)
	}
	if _, err := f.svc.Refresh(t.Context(), tok3.RefreshToken); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("refresh after delete: %v", err)
	}
	if _, err := f.svc.AdminUser(t.Context(), a, u.ID); !errors.Is(err, auth.ErrUserNotFound) {
		t.Fatalf("AdminUser after delete: %v", err)
	}
	if err := f.svc.LogoutUser(t.Context(), a, u.ID); !errors.Is(err, auth.ErrUserNotFound) {
		t.Fatalf("LogoutUser after delete: %v", err)
	}
	want = []string{auth.AuditAdminLogout, auth.AuditLoginSucceeded, auth.AuditAdminUserDeleted}
	if got := f.audit.types(t, u.ID); !slices.Equal(got[len(got)-3:], want) {
		t.Fatalf("audit: %v, want it to end with %v", got, want)
	}
}

func TestListUsers(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	for _, e := range []string{"ann@example.com", "bob@example.com", "carl@example.org"} {
		f.user(t, e)
	}
	page, next, err := f.svc.ListUsers(t.Context(), a, auth.UserQuery{Query: " EXAMPLE.com ", Limit: 2})
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first page: %v, %q, %v", page, next, err)
	}
	rest, next2, err := f.svc.ListUsers(t.Context(), a, auth.UserQuery{Query: "example.com", Limit: 2, After: next})
	if err != nil || len(rest) != 1 || next2 != "" { // ann, bob, root: 3 in all
		t.Fatalf("second page: %v, %q, %v", rest, next2, err)
	}
	for _, u := range append(page, rest...) {
		if u.PasswordHash != "" {
			t.Fatalf("a listed user has its hash: %+v", u)
		}
	}
	for _, q := range []auth.UserQuery{{Limit: -1}, {Limit: 201}, {After: "NOT A CURSOR"}, {Query: "a\u200bb"}} {
		if _, _, err := f.svc.ListUsers(t.Context(), a, q); !errors.Is(err, auth.ErrInvalidInput) {
			t.Errorf("ListUsers(%+v): %v, want ErrInvalidInput", q, err)
		}
	}
}

// Service accounts: the secret works once shown, only its hash is kept;
// the token is the service account's (no session); deletion revokes it.
func TestServiceAccounts(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	c, secret, err := f.svc.CreateClient(t.Context(), a, " reports ", []string{"reader"})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := f.clients.ByID(t.Context(), c.ID)
	if !strings.HasPrefix(c.ID, auth.ClientIDPrefix) || !strings.HasPrefix(secret, auth.ClientSecretPrefix) ||
		len(secret) != len(auth.ClientSecretPrefix)+43 || stored.SecretHash != auth.HashClientSecret(secret) ||
		strings.Contains(stored.SecretHash, secret) || stored.Name != "reports" || stored.CreatedBy != a.ID() {
		t.Fatalf("created %+v, secret %q, stored %+v", c, secret, stored)
	}
	tok, err := f.svc.ClientToken(t.Context(), c.ID, secret)
	if err != nil || tok.RefreshToken != "" {
		t.Fatalf("ClientToken = %+v, %v", tok, err)
	}
	claims, _ := fakeVerifier{}.Verify(t.Context(), tok.AccessToken)
	if claims.Subject != c.ID || claims.ClientID != c.ID || claims.SessionID != "" || !claims.ServiceAccount() ||
		!slices.Equal(claims.Roles, []string{"reader"}) || claims.Email != "" {
		t.Fatalf("claims %+v", claims)
	}
	for _, bad := range [][2]string{{c.ID, secret + "x"}, {c.ID, ""}, {"svc-nobody", secret}, {"", secret}} {
		if _, err := f.svc.ClientToken(t.Context(), bad[0], bad[1]); !errors.Is(err, auth.ErrInvalidClient) {
			t.Errorf("ClientToken(%q, …): %v, want ErrInvalidClient", bad[0], err)
		}
	}
	if _, _, err := f.svc.CreateClient(t.Context(), a, "", nil); !errors.Is(err, auth.ErrInvalidInput) {
		t.Fatalf("no name: %v", err)
	}
	if err := f.svc.DeleteClient(t.Context(), a, c.ID); err != nil {
		t.Fatal(err)
	}
	evs := f.userEvents(c.ID)
	if len(evs) != 1 || evs[0].Reason != revocation.ReasonClientRevoked || evs[0].SessionID != "" || evs[0].TokenID != "" {
		t.Fatalf("events %+v, want one client_revoked for the client id", evs)
	}
	if _, err := f.svc.ClientToken(t.Context(), c.ID, secret); !errors.Is(err, auth.ErrInvalidClient) {
		t.Fatalf("a deleted client's secret: %v", err)
	}
	if err := f.svc.DeleteClient(t.Context(), a, c.ID); !errors.Is(err, auth.ErrClientNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	want := []string{auth.AuditClientCreated, auth.AuditLoginSucceeded, auth.AuditLoginFailed, auth.AuditLoginFailed,
		auth.AuditClientRevoked, auth.AuditLoginFailed}
	if got := f.audit.types(t, c.ID); !slices.Equal(got, want) {
		t.Fatalf("audit of the client: %v, want %v", got, want)
	}
}

func TestIntrospect(t *testing.T) {
	f := newAdminFixture(t)
	a, _ := f.admin(t)
	c, secret, _ := f.svc.CreateClient(t.Context(), a, "gateway", nil)
	svcTok, _ := f.svc.ClientToken(t.Context(), c.ID, secret)
	_, userTok := f.user(t, "ann@example.com")
	basic := auth.IntrospectionCaller{ClientID: c.ID, ClientSecret: secret}
	bearer := auth.IntrospectionCaller{Bearer: svcTok.AccessToken}
	for name, caller := range map[string]auth.IntrospectionCaller{"basic": basic, "bearer": bearer} {
		got, err := f.svc.Introspect(t.Context(), caller, userTok.AccessToken)
		if err != nil || got == nil || got.SessionID != userTok.Session.ID {
			t.Fatalf("%s: a live token: %+v, %v", name, got, err)
		}
		if got, err := f.svc.Introspect(t.Context(), caller, "garbage"); err != nil || got != nil {
			t.Fatalf("%s: garbage: %+v, %v; want inactive", name, got, err)
		}
	}
	if got, err := f.svc.Introspect(t.Context(), basic, svcTok.AccessToken); err != nil || got == nil || got.Subject != c.ID {
		t.Fatalf("a service account's token: %+v, %v", got, err)
	}
	for name, caller := range map[string]auth.IntrospectionCaller{
		"wrong secret":  {ClientID: c.ID, ClientSecret: "jgs_wrong"},
		"no credential": {},
		"a user token":  {Bearer: userTok.AccessToken},
		"garbage token": {Bearer: "garbage"},
	} {
		_, err := f.svc.Introspect(t.Context(), caller, userTok.AccessToken)
		if !errors.Is(err, auth.ErrInvalidClient) && !errors.Is(err, auth.ErrForbidden) && !errors.Is(err, auth.ErrInvalidAccessToken) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	// Logged out (its session gone): inactive, even to an issuer that has
	// not seen the event.
	if err := f.svc.Logout(t.Context(), auth.LogoutInput{RefreshToken: userTok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.Introspect(t.Context(), basic, userTok.AccessToken); err != nil || got != nil {
		t.Fatalf("after logout: %+v, %v; want inactive", got, err)
	}
	other, otherSecret, _ := f.svc.CreateClient(t.Context(), a, "other", nil)
	if err := f.svc.DeleteClient(t.Context(), a, c.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.Introspect(t.Context(), auth.IntrospectionCaller{ClientID: other.ID, ClientSecret: otherSecret},
		svcTok.AccessToken); err != nil || got != nil {
		t.Fatalf("a deleted service account's token: %+v, %v; want inactive", got, err)
	}
	if _, err := f.svc.Introspect(t.Context(), bearer, userTok.AccessToken); !errors.Is(err, auth.ErrInvalidAccessToken) {
		t.Fatalf("a deleted service account as the caller: %v", err)
	}
}

// Every flow records its entry, with the request's caller, and never a
// secret.
func TestAuditEntries(t *testing.T) {
	f := newAdminFixture(t)
	ctx := auth.WithCaller(t.Context(), auth.Caller{IP: "::ffff:192.0.2.7", UserAgent: "agent\x00/1"})
	if _, err := f.svc.Login(ctx, auth.LoginInput{Identifier: "nobody@example.com", Password: "guess guess guess"}); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	es, _ := f.audit.List(t.Context(), auth.AuditQuery{Limit: 10})
	if len(es) != 1 || es[0].Type != auth.AuditLoginFailed || es[0].Actor != "" || es[0].Target != "" ||
		es[0].IP != "192.0.2.7" || es[0].UserAgent != "agent/1" || es[0].Detail != "unknown_account" {
		t.Fatalf("entries %+v", es)
	}
	for _, e := range es {
		if strings.Contains(e.Detail+e.Actor+e.Target, "guess") {
			t.Fatalf("a password in %+v", e)
		}
	}
}
