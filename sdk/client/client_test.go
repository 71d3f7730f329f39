package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/client"
)

const password = "correct horse battery"

// loggedIn registers and logs in a user against f.
func loggedIn(t *testing.T, f *fakeIssuer, c *client.Client) *client.Tokens {
	t.Helper()
	if _, err := c.Register(t.Context(), client.RegisterRequest{Email: "ada@example.com", Password: password,
		Username: "ada"}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	tok, err := c.Login(t.Context(), client.LoginRequest{Email: "ada@example.com", Password: password})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return tok
}

func TestRegisterLoginRefreshMeLogout(t *testing.T) {
	f := newFakeIssuer(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := client.New(f.URL+"/", client.WithHTTPClient(f.Client()), client.WithClock(func() time.Time { return now }))

	u, err := c.Register(t.Context(), client.RegisterRequest{Email: " Ada@Example.com ", Password: password,
		Username: "ada", FirstName: "Ada"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.ID == "" || u.Email != "ada@example.com" || u.FirstName != "Ada" {
		t.Fatalf("Register() = %+v", u)
	}

	for name, req := range map[string]client.LoginRequest{
		"email":      {Email: "ada@example.com", Password: password},
		"username":   {Username: "ada", Password: password},
		"identifier": {Identifier: "ada@example.com", Password: password},
	} {
		tok, err := c.Login(t.Context(), req)
		if err != nil {
			t.Fatalf("Login by %s: %v", name, err)
		}
		if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 300 ||
			!tok.ExpiresAt.Equal(now.Add(300*time.Second)) || !strings.HasPrefix(tok.RefreshToken, "rt-") ||
			tok.User == nil || tok.User.ID != u.ID {
			t.Fatalf("Login by %s = %+v", name, tok)
		}
	}

	tok, err := c.Login(t.Context(), client.LoginRequest{Email: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.Me(t.Context(), tok.AccessToken)
	if err != nil || me.ID != u.ID {
		t.Fatalf("Me() = %+v, %v", me, err)
	}

	next, err := c.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatalf("Refresh did not rotate: %+v after %+v", next, tok)
	}
	if _, err := c.Refresh(t.Context(), tok.RefreshToken); !client.HasCode(err, client.CodeInvalidRefreshToken) {
		t.Fatalf("reusing a rotated refresh token: error = %v, want %s", err, client.CodeInvalidRefreshToken)
	}

	if err := c.Logout(t.Context(), next.RefreshToken, "global"); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if got := f.lastLogout.Load(); got != "global" {
		t.Errorf("logout scope sent = %v, want global", got)
	}
	if _, err := c.Refresh(t.Context(), next.RefreshToken); err == nil {
		t.Error("refresh after logout succeeded")
	}
}

// A cookie jar on the http.Client would send the last login's refresh
// cookie, which the issuer reads before the body: the client ignores it.
func TestCookieJarIsNotUsed(t *testing.T) {
	f := newFakeIssuer(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(f.URL, client.WithHTTPClient(&http.Client{Jar: jar}))
	ada := loggedIn(t, f, c)
	if _, err := c.Register(t.Context(), client.RegisterRequest{Email: "bob@example.com", Password: password}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(t.Context(), client.LoginRequest{Email: "bob@example.com", Password: password}); err != nil {
		t.Fatal(err)
	}
	next, err := c.Refresh(t.Context(), ada.RefreshToken)
	if err != nil || next.User.Email != "ada@example.com" {
		t.Fatalf("Refresh(Ada's token) = %+v, %v; want Ada's tokens", next, err)
	}
}

func TestProblems(t *testing.T) {
	f := newFakeIssuer(t)
	c := client.New(f.URL)
	loggedIn(t, f, c)

	_, err := c.Register(t.Context(), client.RegisterRequest{Email: "ada@example.com", Password: password})
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusConflict || p.Code != client.CodeEmailTaken {
		t.Fatalf("duplicate Register: error = %#v, want 409 email_taken", err)
	}

	_, err = c.Register(t.Context(), client.RegisterRequest{Email: "nope", Password: "short"})
	if !errors.As(err, &p) || p.Status != 400 || len(p.Errors) != 2 || p.Errors[1].Field != "password" {
		t.Fatalf("invalid Register: error = %#v, want 400 with two field errors", err)
	}

	_, err = c.Login(t.Context(), client.LoginRequest{Email: "ada@example.com", Password: "wrong password"})
	if !client.HasCode(err, client.CodeInvalidCredentials) {
		t.Fatalf("bad password: error = %v, want invalid_credentials", err)
	}
	if _, err := c.Me(t.Context(), "forged"); !errors.As(err, &p) || p.Status != 401 {
		t.Fatalf("Me(forged): error = %v, want 401", err)
	}

	f.setDown(true)
	_, err = c.Login(t.Context(), client.LoginRequest{Email: "ada@example.com", Password: password})
	if !errors.As(err, &p) || p.Status != 503 || p.Code != client.CodeUnavailable || p.RetryAfter != 7*time.Second {
		t.Fatalf("issuer down: error = %#v, want 503 unavailable, RetryAfter 7s", err)
	}
}

func TestProblemFromNonJSONAnswer(t *testing.T) {
	f := newFakeIssuer(t)
	c := client.New(f.URL + "/nothing-here") // the mux answers 404 text/plain
	_, err := c.Me(t.Context(), "x")
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound || p.Title != "Not Found" {
		t.Fatalf("error = %#v, want a 404 Problem", err)
	}
	if _, err := client.New("not a url").Me(t.Context(), "x"); err == nil {
		t.Fatal("a client of an invalid base URL succeeded")
	}
}

// 50 requests at once with an access token inside the refresh margin cause
// exactly one refresh; all of them carry the new token; the rotated refresh
// token is kept.
func TestSessionOneRefreshForConcurrentRequests(t *testing.T) {
	f := newFakeIssuer(t)
	f.loginTTL = 10 // inside the 30 s margin
	f.refreshDelay = 50 * time.Millisecond
	c := client.New(f.URL)
	tok := loggedIn(t, f, c)
	var persisted []client.Tokens
	var mu sync.Mutex
	s := c.Session(tok, client.WithRefreshMargin(30*time.Second),
		client.OnRefresh(func(t client.Tokens) { mu.Lock(); persisted = append(persisted, t); mu.Unlock() }))
	hc := s.HTTPClient()

	start := make(chan struct{})
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Go(func() {
			<-start
			res, err := hc.Get(f.URL + "/api/data")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 {
				t.Errorf("request %d: status %d", i, res.StatusCode)
			}
			bodies[i] = string(b)
		})
	}
	close(start)
	wg.Wait()

	if n := f.refreshCalls.Load(); n != 1 {
		t.Fatalf("%d refresh calls for 50 concurrent requests, want 1", n)
	}
	cur := s.Tokens()
	if cur.RefreshToken == tok.RefreshToken || cur.AccessToken == tok.AccessToken || cur.User == nil {
		t.Fatalf("session tokens not rotated: %+v", cur)
	}
	for i, b := range bodies {
		if b != "Bearer "+cur.AccessToken+"|" {
			t.Fatalf("request %d carried %q, want the refreshed token %s", i, b, cur.AccessToken)
		}
	}
	if len(persisted) != 1 || persisted[0].RefreshToken != cur.RefreshToken {
		t.Fatalf("OnRefresh calls = %+v, want one with the rotated refresh token", persisted)
	}
	// The old refresh token is dead at the issuer: the session must not use it again.
	if _, err := c.Refresh(t.Context(), tok.RefreshToken); err == nil {
		t.Fatal("the pre-rotation refresh token still works at the fake issuer")
	}
}

// By default a token is refreshed 30 s before it expires, or when half of its
// lifetime is left if that is shorter.
func TestSessionDefaultMargin(t *testing.T) {
	for _, tt := range []struct {
		ttl          int64         // expires_in of the login
		fresh, stale time.Duration // after login: not refreshed yet, refreshed
	}{
		{ttl: 300, fresh: 269 * time.Second, stale: 271 * time.Second},
		{ttl: 10, fresh: 4 * time.Second, stale: 6 * time.Second},
	} {
		f := newFakeIssuer(t)
		f.loginTTL = tt.ttl
		now := time.Now()
		c := client.New(f.URL, client.WithClock(func() time.Time { return now }))
		tok := loggedIn(t, f, c)
		s := c.Session(tok)
		start := now
		now = start.Add(tt.fresh)
		if got, err := s.AccessToken(t.Context()); err != nil || got != tok.AccessToken || f.refreshCalls.Load() != 0 {
			t.Fatalf("%d s token, %s after login: AccessToken() = %q, %v after %d refreshes; want the login's token",
				tt.ttl, tt.fresh, got, err, f.refreshCalls.Load())
		}
		now = start.Add(tt.stale)
		if got, err := s.AccessToken(t.Context()); err != nil || got == tok.AccessToken || f.refreshCalls.Load() != 1 {
			t.Fatalf("%d s token, %s after login: AccessToken() = %q, %v after %d refreshes; want a refreshed token",
				tt.ttl, tt.stale, got, err, f.refreshCalls.Load())
		}
	}
}

// A 401 (a token revoked or signed by a retired key) triggers one refresh and
// one retry, body included; a second 401 is returned to the caller.
func TestSessionRetriesOnceAfter401(t *testing.T) {
	f := newFakeIssuer(t)
	c := client.New(f.URL)
	s := c.Session(loggedIn(t, f, c))
	hc := s.HTTPClient()

	f.revokeAccess()
	res, err := hc.Post(f.URL+"/api/echo", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasSuffix(string(b), "|payload") {
		t.Fatalf("after 401: status %d body %q, want 200 with the body replayed", res.StatusCode, b)
	}
	if n := f.refreshCalls.Load(); n != 1 {
		t.Fatalf("%d refresh calls, want 1", n)
	}

	// Refresh token gone too: the 401 reaches the caller after one attempt.
	f.revokeAccess()
	if err := s.Logout(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	calls := f.apiCalls.Load()
	res, err = hc.Get(f.URL + "/api/data")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || f.apiCalls.Load()-calls != 1 {
		t.Fatalf("status %d after %d calls, want 401 after 1", res.StatusCode, f.apiCalls.Load()-calls)
	}
}

// While the issuer is down, a token that has not expired yet is still used;
// an expired one is an error, not a request without credentials.
func TestSessionIssuerDown(t *testing.T) {
	f := newFakeIssuer(t)
	now := time.Now()
	clock := func() time.Time { return now }
	c := client.New(f.URL, client.WithClock(clock))
	f.loginTTL = 20
	tok := loggedIn(t, f, c)
	s := c.Session(tok, client.WithRefreshMargin(30*time.Second))
	f.setDown(true)

	got, err := s.AccessToken(t.Context())
	if err != nil || got != tok.AccessToken {
		t.Fatalf("within margin, issuer down: AccessToken() = %q, %v; want the current token", got, err)
	}
	now = now.Add(time.Minute)
	_, err = s.AccessToken(t.Context())
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 503 {
		t.Fatalf("expired, issuer down: AccessToken() error = %v, want the 503 Problem", err)
	}
	calls := f.apiCalls.Load()
	if _, err := s.HTTPClient().Get(f.URL + "/api/data"); err == nil || f.apiCalls.Load() != calls {
		t.Fatalf("request sent without a usable token (err %v)", err)
	}

	f.setDown(false)
	if _, err := s.AccessToken(context.Background()); err != nil {
		t.Fatalf("issuer back: %v", err)
	}
	if s.Tokens().AccessToken == tok.AccessToken {
		t.Fatal("token not refreshed once the issuer is back")
	}
}
