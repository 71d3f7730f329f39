package client_test

// These tests run the client against the real issuer: bin/issuer on the dev
// stack's servers, one process per test (sdktest.StartIssuerProcess). The
// hand-written fake of fake_test.go stays for what the real issuer can't be
// made to answer cheaply: a 503 with Retry-After, a body that is not JSON.

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/client"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Settings of an issuer whose access tokens expire during a test: 3 s, a
// verifier leeway of 1 s, and a reuse grace of 1 s, so that a client that
// sent a rotated refresh token again a few seconds later would get its
// session revoked instead of the same successor.
var shortLived = map[string]string{
	"JOTGUARD_ACCESS_TTL":          "3s",
	"JOTGUARD_LEEWAY":              "1s",
	"JOTGUARD_REFRESH_REUSE_GRACE": "1s",
}

// newEmail returns an address no test has registered yet.
func newEmail() string { return "ada-" + strings.ToLower(rand.Text()[:12]) + "@example.com" }

// signUp registers a fresh user and logs it in.
func signUp(t *testing.T, c *client.Client) (*client.User, *client.Tokens) {
	t.Helper()
	email := newEmail()
	u, err := c.Register(t.Context(), client.RegisterRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	tok, err := c.Login(t.Context(), client.LoginRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return u, tok
}

// login logs email in again: one more session of the same user.
func login(t *testing.T, c *client.Client, email string) *client.Tokens {
	t.Helper()
	tok, err := c.Login(t.Context(), client.LoginRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return tok
}

// brief shows tokens in a failure message: the ends of the tokens, the
// lifetime, the user.
func brief(tok *client.Tokens) string {
	if tok == nil {
		return "no tokens"
	}
	end := func(s string) string { return "…" + s[max(len(s)-8, 0):] }
	user := "none"
	if tok.User != nil {
		user = tok.User.ID
	}
	return fmt.Sprintf("{access %s, refresh %s, %s, expires_in %d, user %s}", end(tok.AccessToken),
		end(tok.RefreshToken), tok.TokenType, tok.ExpiresIn, user)
}

// problemOf returns err's *Problem, failing the test if it has none.
func problemOf(t *testing.T, what string, err error) *client.Problem {
	t.Helper()
	var p *client.Problem
	if !errors.As(err, &p) {
		t.Fatalf("%s: error = %v, want a *client.Problem", what, err)
	}
	return p
}

// getUser sends GET base/me with hc and decodes the user of a 200 answer.
func getUser(t *testing.T, hc *http.Client, base string) (int, *client.User) {
	t.Helper()
	res, err := hc.Get(base + "/me")
	if err != nil {
		t.Fatalf("GET /me: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	var u client.User
	if err := json.NewDecoder(res.Body).Decode(&u); err != nil {
		t.Fatalf("GET /me: %v", err)
	}
	return res.StatusCode, &u
}

// echoAuth is a loopback server that answers each request with the
// Authorization header it got.
func echoAuth(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// sentToken sends GET srv through hc and returns the bearer token srv got.
func sentToken(t *testing.T, hc *http.Client, srv *httptest.Server) string {
	t.Helper()
	res, err := hc.Get(srv.URL)
	if err != nil {
		t.Errorf("GET %s: %v", srv.URL, err)
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	tok, ok := strings.CutPrefix(string(b), "Bearer ")
	if !ok {
		t.Errorf("the request carried Authorization %q, want a Bearer token", b)
	}
	return tok
}

// waitRejected waits until the issuer refuses token as invalid (expired):
// a bounded wait for a real expiry, at most 30 s.
func waitRejected(t *testing.T, c *client.Client, token string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Me(t.Context(), token)
		switch {
		case client.HasCode(err, client.CodeInvalidToken):
			return
		case err != nil:
			t.Fatalf("Me while waiting for the token to expire: %v", err)
		case time.Now().After(deadline):
			t.Fatal("the issuer still accepts the access token 30 s later")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clock is a client clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// refreshes records a Session's OnRefresh calls.
type refreshes struct {
	mu   sync.Mutex
	seen []client.Tokens
}

func (r *refreshes) record(t client.Tokens) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, t)
}

func (r *refreshes) all() []client.Tokens {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Tokens(nil), r.seen...)
}

func TestRealRegister(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	email := newEmail()
	username := "ada_" + strings.ToLower(rand.Text()[:8])

	u, err := c.Register(t.Context(), client.RegisterRequest{Email: "  " + strings.ToUpper(email) + " ",
		Password: password, Username: username, FirstName: "Ada", LastName: "Lovelace"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.ID == "" || u.Email != email || u.Username != username || u.FirstName != "Ada" || u.LastName != "Lovelace" ||
		u.EmailVerified || u.CreatedAt.IsZero() {
		t.Fatalf("Register() = %+v; want a new id, the normalized email %s, the names, unverified, a creation time", u, email)
	}

	tests := []struct {
		name       string
		req        client.RegisterRequest
		status     int
		code       string
		wantFields []string
	}{
		{"same email", client.RegisterRequest{Email: email, Password: password},
			http.StatusConflict, client.CodeEmailTaken, nil},
		{"same email, other spelling", client.RegisterRequest{Email: strings.ToUpper(email), Password: password},
			http.StatusConflict, client.CodeEmailTaken, nil},
		{"same username", client.RegisterRequest{Email: newEmail(), Password: password, Username: username},
			http.StatusConflict, client.CodeUsernameTaken, nil},
		{"not an email", client.RegisterRequest{Email: "ada.example.com", Password: password},
			http.StatusBadRequest, client.CodeInvalidRequest, []string{"email"}},
		{"short password", client.RegisterRequest{Email: newEmail(), Password: "too short"},
			http.StatusBadRequest, client.CodeWeakPassword, []string{"password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Register(t.Context(), tt.req)
			p := problemOf(t, "Register", err)
			if p.Status != tt.status || p.Code != tt.code || !client.HasCode(err, tt.code) {
				t.Fatalf("Register: %v; want %d %s", err, tt.status, tt.code)
			}
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.wantFields, ",") {
				t.Fatalf("field errors %+v, want fields %v", p.Errors, tt.wantFields)
			}
		})
	}
}

func TestRealLogin(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	now := time.Now()
	c := client.New(iss.URL, client.WithClock(func() time.Time { return now }))
	email, username := newEmail(), "ada_"+strings.ToLower(rand.Text()[:8])
	u, err := c.Register(t.Context(), client.RegisterRequest{Email: email, Password: password, Username: username})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"}})
	if err != nil {
		t.Fatal(err)
	}

	sids := map[string]bool{}
	refresh := map[string]bool{}
	for _, tt := range []struct {
		name string
		req  client.LoginRequest
	}{
		{"email", client.LoginRequest{Email: email, Password: password}},
		{"email in capitals", client.LoginRequest{Email: strings.ToUpper(email), Password: password}},
		{"username", client.LoginRequest{Username: username, Password: password}},
		{"identifier", client.LoginRequest{Identifier: email, Password: password}},
	} {
		tok, err := c.Login(t.Context(), tt.req)
		if err != nil {
			t.Fatalf("Login by %s: %v", tt.name, err)
		}
		if tok.TokenType != "Bearer" || tok.ExpiresIn != 300 || !tok.ExpiresAt.Equal(now.Add(300*time.Second)) ||
			tok.RefreshToken == "" || refresh[tok.RefreshToken] || tok.User == nil || tok.User.ID != u.ID ||
			tok.User.Email != email {
			t.Fatalf("Login by %s = %s; want a Bearer token for 300 s, a new refresh token, user %s", tt.name, brief(tok), u.ID)
		}
		refresh[tok.RefreshToken] = true
		// The access token is one the sdk verifies against this issuer's JWKS.
		claims, err := v.Verify(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatalf("Login by %s: Verify(access token): %v", tt.name, err)
		}
		if claims.Subject != u.ID || claims.SessionID == "" || sids[claims.SessionID] {
			t.Fatalf("Login by %s: claims sub %q sid %q; want sub %s and a new session", tt.name,
				claims.Subject, claims.SessionID, u.ID)
		}
		sids[claims.SessionID] = true
	}

	// A wrong password and an unknown account look the same.
	_, err = c.Login(t.Context(), client.LoginRequest{Email: email, Password: "wrong password!"})
	wrong := problemOf(t, "Login with a wrong password", err)
	_, err = c.Login(t.Context(), client.LoginRequest{Email: newEmail(), Password: password})
	unknown := problemOf(t, "Login of an unknown email", err)
	for _, p := range []*client.Problem{wrong, unknown} {
		if p.Status != http.StatusUnauthorized || p.Code != client.CodeInvalidCredentials {
			t.Fatalf("Login: %v; want 401 %s", p, client.CodeInvalidCredentials)
		}
	}
	if wrong.Error() != unknown.Error() {
		t.Fatalf("wrong password: %v; unknown email: %v; want the same answer", wrong, unknown)
	}
}

func TestRealMeAndRefresh(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	u, tok := signUp(t, c)

	me, err := c.Me(t.Context(), tok.AccessToken)
	if err != nil || me.ID != u.ID || me.Email != u.Email {
		t.Fatalf("Me() = %+v, %v; want user %s", me, err, u.ID)
	}
	_, err = c.Me(t.Context(), "not-a-token")
	if p := problemOf(t, "Me(garbage)", err); p.Status != http.StatusUnauthorized || p.Code != client.CodeInvalidToken {
		t.Fatalf("Me(garbage): %v; want 401 %s", err, client.CodeInvalidToken)
	}

	next, err := c.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if next.AccessToken == tok.AccessToken || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken ||
		next.ExpiresIn != 300 || next.User == nil || next.User.ID != u.ID {
		t.Fatalf("Refresh() = %s after %s; want both tokens rotated, for user %s", brief(next), brief(tok), u.ID)
	}
	if me, err := c.Me(t.Context(), next.AccessToken); err != nil || me.ID != u.ID {
		t.Fatalf("Me(refreshed token) = %+v, %v", me, err)
	}
	if third, err := c.Refresh(t.Context(), next.RefreshToken); err != nil || third.User == nil || third.User.ID != u.ID {
		t.Fatalf("Refresh(rotated token) = %s, %v", brief(third), err)
	}

	_, err = c.Refresh(t.Context(), "bm90IGEgcmVmcmVzaCB0b2tlbiBhdCBhbGwsIHJlYWxseQ")
	if p := problemOf(t, "Refresh(unknown)", err); p.Status != http.StatusUnauthorized || p.Code != client.CodeInvalidRefreshToken {
		t.Fatalf("Refresh(unknown): %v; want 401 %s", err, client.CodeInvalidRefreshToken)
	}
}

// The session's http.Client authenticates requests to the issuer and to any
// other server, with the current access token.
func TestRealSessionHTTPClient(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	u, tok := signUp(t, c)
	echo := echoAuth(t)
	s := c.Session(tok, client.WithOrigins(echo.URL))
	hc := s.HTTPClient()

	if status, _ := getUser(t, http.DefaultClient, iss.URL); status != http.StatusUnauthorized {
		t.Fatalf("GET /me without a token: %d, want 401", status)
	}
	if status, me := getUser(t, hc, iss.URL); status != http.StatusOK || me.ID != u.ID {
		t.Fatalf("GET /me through the session: %d %+v, want 200 and user %s", status, me, u.ID)
	}
	if got := sentToken(t, hc, echo); got != tok.AccessToken {
		t.Fatalf("the session sent another token than the login's")
	}
	if got, err := s.AccessToken(t.Context()); err != nil || got != tok.AccessToken {
		t.Fatalf("AccessToken(): %v, or another token than the login's", err)
	}
	if cur := s.Tokens(); cur.RefreshToken != tok.RefreshToken {
		t.Fatalf("a token with 300 s left was refreshed: %s after %s", brief(&cur), brief(tok))
	}
}

// With 3 s tokens, a session refreshes when less than half the lifetime is
// left: once for many concurrent requests, which all carry the new token.
func TestRealSessionRefreshesBeforeExpiry(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, shortLived)
	clk := &clock{now: time.Now()}
	c := client.New(iss.URL, client.WithClock(clk.Now))
	u, tok := signUp(t, c)
	if tok.ExpiresIn != 3 {
		t.Fatalf("expires_in %d with JOTGUARD_ACCESS_TTL=3s", tok.ExpiresIn)
	}
	var seen refreshes
	echo := echoAuth(t)
	s := c.Session(tok, client.OnRefresh(seen.record), client.WithOrigins(echo.URL))
	hc := s.HTTPClient()

	if got := sentToken(t, hc, echo); got != tok.AccessToken || len(seen.all()) != 0 {
		t.Fatalf("with 3 s of 3 left, the session sent another token (%d refreshes); want the login's, no refresh",
			len(seen.all()))
	}

	clk.Add(2 * time.Second) // 1 s left: time to refresh
	got := make([]string, 10)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = sentToken(t, hc, echo) })
	}
	wg.Wait()
	cur := s.Tokens()
	if r := seen.all(); len(r) != 1 || r[0].AccessToken != cur.AccessToken || r[0].RefreshToken != cur.RefreshToken {
		t.Fatalf("%d OnRefresh calls, want one with the session's new tokens %s", len(r), brief(&cur))
	}
	if cur.AccessToken == tok.AccessToken || cur.RefreshToken == tok.RefreshToken || cur.User == nil || cur.User.ID != u.ID {
		t.Fatalf("tokens after the refresh %s after %s; want both rotated, for user %s", brief(&cur), brief(tok), u.ID)
	}
	for i, g := range got {
		if g != cur.AccessToken {
			t.Fatalf("request %d did not carry the refreshed token", i)
		}
	}
	// The session's clock says the new token is fresh; whatever the real
	// clock says, the issuer takes what the session sends (after a refresh
	// on its 401 at worst).
	if status, me := getUser(t, hc, iss.URL); status != http.StatusOK || me.ID != u.ID {
		t.Fatalf("GET /me through the session: %d %+v", status, me)
	}
}

// Once the issuer refuses the access token as expired, a request through the
// session still succeeds, with a new access token and a rotated refresh
// token; twice, so the second refresh used the refresh token of the first.
func TestRealSessionAfterExpiry(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, shortLived)
	c := client.New(iss.URL)
	u, tok := signUp(t, c)
	var seen refreshes
	s := c.Session(tok, client.OnRefresh(seen.record))
	hc := s.HTTPClient()

	for round := 1; round <= 2; round++ {
		prev := s.Tokens()
		waitRejected(t, c, prev.AccessToken)
		if status, me := getUser(t, hc, iss.URL); status != http.StatusOK || me.ID != u.ID {
			t.Fatalf("round %d: GET /me through the session after expiry: %d %+v, want 200 and user %s",
				round, status, me, u.ID)
		}
		cur := s.Tokens()
		if cur.AccessToken == prev.AccessToken || cur.RefreshToken == prev.RefreshToken {
			t.Fatalf("round %d: tokens not rotated: %s after %s", round, brief(&cur), brief(&prev))
		}
		if r := seen.all(); len(r) < round || r[len(r)-1].RefreshToken != cur.RefreshToken {
			t.Fatalf("round %d: %d OnRefresh calls, want %d or more, the last with the current refresh token",
				round, len(r), round)
		}
	}
}

// A session whose clock lags thinks its token is fresh: the issuer's 401
// makes it refresh and send the request again.
func TestRealSessionRetriesAfter401(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, shortLived)
	c := client.New(iss.URL, client.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	u, tok := signUp(t, c)
	var seen refreshes
	s := c.Session(tok, client.OnRefresh(seen.record))

	waitRejected(t, c, tok.AccessToken)
	if status, me := getUser(t, s.HTTPClient(), iss.URL); status != http.StatusOK || me.ID != u.ID {
		t.Fatalf("GET /me with a token the issuer refuses: %d %+v, want 200 after a refresh", status, me)
	}
	if cur := s.Tokens(); cur.AccessToken == tok.AccessToken || cur.RefreshToken == tok.RefreshToken || len(seen.all()) != 1 {
		t.Fatalf("tokens %s after %s and %d refreshes; want both rotated by one refresh", brief(&cur), brief(tok), len(seen.all()))
	}
}

func TestRealLogout(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	// dead reports whether the issuer refuses tok's refresh token as
	// invalid_refresh_token; a live one is rotated by the check.
	dead := func(t *testing.T, tok *client.Tokens) bool {
		t.Helper()
		_, err := c.Refresh(t.Context(), tok.RefreshToken)
		if err != nil && !client.HasCode(err, client.CodeInvalidRefreshToken) {
			t.Fatalf("Refresh: %v", err)
		}
		return err != nil
	}

	for _, scope := range []string{"", "local"} {
		t.Run("scope "+cmp.Or(scope, "default"), func(t *testing.T) {
			u, a := signUp(t, c)
			b := login(t, c, u.Email)
			if err := c.Logout(t.Context(), a.RefreshToken, scope); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			if !dead(t, a) || dead(t, b) {
				t.Fatal("want the logged-out session's refresh token refused and the other session's accepted")
			}
			if _, err := c.Me(t.Context(), a.AccessToken); !client.HasCode(err, client.CodeInvalidToken) {
				t.Fatalf("Me(access token of the logged-out session): %v; want %s", err, client.CodeInvalidToken)
			}
		})
	}

	t.Run("scope others", func(t *testing.T) {
		u, a := signUp(t, c)
		b, d := login(t, c, u.Email), login(t, c, u.Email)
		s := c.Session(a)
		if err := s.Logout(t.Context(), "others"); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if !dead(t, b) || !dead(t, d) {
			t.Fatal("another session's refresh token still works")
		}
		if status, me := getUser(t, s.HTTPClient(), iss.URL); status != http.StatusOK || me.ID != u.ID {
			t.Fatalf("GET /me through the remaining session: %d %+v", status, me)
		}
		if dead(t, a) {
			t.Fatal("the session that logged the others out was ended too")
		}
	})

	t.Run("scope global", func(t *testing.T) {
		u, a := signUp(t, c)
		b := login(t, c, u.Email)
		_, other := signUp(t, c) // another user's session is not touched
		s := c.Session(a)
		if err := s.Logout(t.Context(), "global"); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if !dead(t, a) || !dead(t, b) || dead(t, other) {
			t.Fatal("want both of the user's sessions ended, and no one else's")
		}
		// The access token is refused and so is the refresh: the caller gets the 401.
		if status, _ := getUser(t, s.HTTPClient(), iss.URL); status != http.StatusUnauthorized {
			t.Fatalf("GET /me through the logged-out session: %d, want 401", status)
		}
		err := s.Logout(t.Context(), "local")
		if p := problemOf(t, "second Logout", err); p.Status != http.StatusUnauthorized || p.Code != client.CodeInvalidRefreshToken {
			t.Fatalf("Logout of an ended session: %v; want 401 %s", err, client.CodeInvalidRefreshToken)
		}
	})

	t.Run("unknown scope", func(t *testing.T) {
		_, a := signUp(t, c)
		err := c.Logout(t.Context(), a.RefreshToken, "everywhere")
		if p := problemOf(t, "Logout", err); p.Status != http.StatusBadRequest || p.Code != client.CodeInvalidRequest ||
			len(p.Errors) != 1 || p.Errors[0].Field != "scope" {
			t.Fatalf("Logout(scope everywhere): %#v; want 400 %s naming the scope", p, client.CodeInvalidRequest)
		}
		if dead(t, a) {
			t.Fatal("a refused logout ended the session")
		}
	})
}

// Too many credential requests from one address: 429 rate_limited, and
// the Problem carries the issuer's Retry-After.
func TestRealRateLimited(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=3/1m"})
	c := client.New(iss.URL)
	u, _ := signUp(t, c) // register and the first login
	login(t, c, u.Email)
	_, err := c.Login(t.Context(), client.LoginRequest{Email: u.Email, Password: password})
	p := problemOf(t, "fourth credential request", err)
	if p.Status != http.StatusTooManyRequests || p.Code != client.CodeRateLimited || p.RetryAfter <= 0 {
		t.Fatalf("fourth credential request in a minute with a limit of 3: %v, RetryAfter %s; want 429 %s and a Retry-After",
			err, p.RetryAfter, client.CodeRateLimited)
	}
}

// The issuer reads the refresh_token cookie before the body. A cookie jar on
// the client's http.Client holds the last login's cookie, so the client must
// not send it: each call uses the refresh token it was given.
func TestRealClientWithCookieJar(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(iss.URL, client.WithHTTPClient(&http.Client{Jar: jar, Timeout: 30 * time.Second}))
	ada, adaTok := signUp(t, c)
	bob, bobTok := signUp(t, c) // the jar, if used, now holds Bob's refresh cookie

	next, err := c.Refresh(t.Context(), adaTok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh(Ada's token): %v", err)
	}
	if next.User == nil || next.User.ID != ada.ID {
		t.Fatalf("Refresh(Ada's token) answered tokens of %+v, want Ada %s (Bob is %s)", next.User, ada.ID, bob.ID)
	}
	if err := c.Logout(t.Context(), next.RefreshToken, "local"); err != nil {
		t.Fatalf("Logout(Ada): %v", err)
	}
	if bobNext, err := c.Refresh(t.Context(), bobTok.RefreshToken); err != nil || bobNext.User == nil || bobNext.User.ID != bob.ID {
		t.Fatalf("Refresh(Bob's token) after Ada's logout = %s, %v; want Bob's session alive", brief(bobNext), err)
	}
}

// The access token goes only to the issuer's origin and the origins the
// session was given: not to another host, port or scheme, not after a
// redirect there (net/http strips the header; the session must not add it
// back), and a 401 from such a host makes no refresh and no second request.
func TestRealSessionTokenStaysWithItsOrigins(t *testing.T) {
	iss := sdktest.StartIssuerProcess(t, nil)
	c := client.New(iss.URL)
	_, tok := signUp(t, c)
	var foreignGot []string
	var foreignHits int
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits++
		foreignGot = append(foreignGot, r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(foreign.Close)
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+tok.AccessToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, foreign.URL+"/elsewhere", http.StatusFound)
	}))
	t.Cleanup(service.Close)
	var refreshed refreshes
	s := c.Session(tok, client.WithOrigins(service.URL+"/any/path"), client.OnRefresh(refreshed.record))
	hc := s.HTTPClient()

	res, err := hc.Get(service.URL + "/go")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Request.URL.Host != strings.TrimPrefix(foreign.URL, "http://") {
		t.Fatalf("redirect: ended at %s with %d, want the foreign host's 401", res.Request.URL, res.StatusCode)
	}
	res, err = hc.Get(foreign.URL + "/direct")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if foreignHits != 2 || strings.Join(foreignGot, "") != "" {
		t.Fatalf("the foreign host got %d requests with Authorization %q, want 2 without any", foreignHits, foreignGot)
	}
	if n := len(refreshed.all()); n != 0 {
		t.Fatalf("a 401 from a foreign host caused %d refreshes", n)
	}
}
