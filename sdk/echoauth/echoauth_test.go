package echoauth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/echoauth"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// unknown is a revocation source whose state is unknown (a stale feed
// failing closed).
type unknown struct{ on atomic.Bool }

func (u *unknown) Revoked(*sdk.Claims) (bool, error) {
	if u.on.Load() {
		return false, sdk.ErrRevocationUnavailable
	}
	return false, nil
}

type revs struct {
	set     *revocation.Set
	unknown *unknown
}

func (r revs) Revoked(c *sdk.Claims) (bool, error) {
	if ok, err := r.unknown.Revoked(c); err != nil {
		return ok, err
	}
	return r.set.Revoked(c)
}

func waitReady(t *testing.T, v *sdk.Verifier) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for v.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("verifier not ready: %v", v.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMiddleware(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	set := sdktest.NewRevocations(nil)
	down := &unknown{}
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs{set, down} })
	waitReady(t, v)

	e := echo.New()
	handler := func(c echo.Context) error {
		fromEcho, ok1 := echoauth.ClaimsFrom(c)
		fromCtx, ok2 := sdk.ClaimsFromContext(c.Request().Context())
		raw, _ := c.Get(echoauth.ClaimsKey).(*sdk.Claims)
		if !ok1 || !ok2 || fromEcho != fromCtx || raw != fromEcho {
			return c.String(http.StatusTeapot, "claims not passed on")
		}
		return c.String(http.StatusOK, fromEcho.Subject)
	}
	e.GET("/any", handler, echoauth.Middleware(v))
	e.GET("/admin", handler, echoauth.Middleware(v, sdk.RequireRoles("admin", "ops")))
	e.GET("/billing", handler, echoauth.Middleware(v, sdk.RequireAudience("billing")))

	valid := func(sub string, edit ...func(*sdk.Claims)) string {
		c := iss.Claims(sub)
		for _, f := range edit {
			f(&c)
		}
		return "Bearer " + iss.Mint(t, c)
	}
	revoked := iss.Claims("gone")
	revoked.IssuedAt, revoked.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)), jwt.NewNumericDate(time.Now().Add(4*time.Minute))
	set.Add(revocation.Event{ID: "evt-1", Issuer: iss.URL, Subject: "gone", At: time.Now()})

	tests := []struct {
		name      string
		path      string
		auth      string
		unknown   bool
		status    int
		challenge string // prefix of WWW-Authenticate; "" means absent
		body      string
	}{
		{name: "valid", path: "/any", auth: valid("ada"), status: 200, body: "ada"},
		{name: "no token", path: "/any", status: 401, challenge: "Bearer"},
		{name: "other scheme", path: "/any", auth: "Basic YTpi", status: 401, challenge: "Bearer"},
		{name: "garbage", path: "/any", auth: "Bearer not.a.jwt", status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "expired", path: "/any", status: 401, challenge: `Bearer error="invalid_token", error_description="token expired"`,
			auth: valid("ada", func(c *sdk.Claims) {
				c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
			})},
		{name: "wrong type", path: "/any", status: 401, challenge: `Bearer error="invalid_token"`,
			auth: "Bearer " + iss.Sign(t, revocation.TokenType, iss.Claims("ada"))},
		{name: "revoked", path: "/any", status: 401, challenge: `Bearer error="invalid_token", error_description="token revoked"`,
			auth: "Bearer " + iss.Mint(t, revoked)},
		{name: "missing role", path: "/admin", auth: valid("ada"), status: 403, challenge: `Bearer error="insufficient_scope"`},
		{name: "one of the roles", path: "/admin", auth: valid("ada", func(c *sdk.Claims) { c.Roles = []string{"user", "ops"} }),
			status: 200, body: "ada"},
		{name: "narrower audience missing", path: "/billing", auth: valid("ada"), status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "narrower audience held", path: "/billing", status: 200, body: "ada",
			auth: valid("ada", func(c *sdk.Claims) { c.Audience = jwt.ClaimStrings{"jotguard", "billing"} })},
		{name: "revocation state unknown", path: "/any", auth: valid("ada"), unknown: true, status: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down.on.Store(tt.unknown)
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.status)
			}
			got := rec.Header().Get("WWW-Authenticate")
			if (tt.challenge == "") != (got == "") || !strings.HasPrefix(got, tt.challenge) {
				t.Fatalf("WWW-Authenticate %q, want prefix %q", got, tt.challenge)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", rec.Body, tt.body)
			}
			if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

// Echo's HTTPErrorHandler gets an *echo.HTTPError that unwraps to the sdk
// sentinel, and a handler's own error passes through untouched.
func TestErrorsReachEchoErrorHandler(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := iss.Verifier(t)
	waitReady(t, v)
	e := echo.New()
	var got error
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		got = err
		e.DefaultHTTPErrorHandler(err, c)
	}
	errHandler := errors.New("handler failed")
	e.GET("/", func(echo.Context) error { return errHandler }, echoauth.Middleware(v))

	c := iss.Claims("ada")
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+iss.Mint(t, c))
	e.ServeHTTP(httptest.NewRecorder(), req)
	var he *echo.HTTPError
	if !errors.As(got, &he) || he.Code != 401 || !errors.Is(got, sdk.ErrExpired) {
		t.Fatalf("error handler got %#v, want a 401 *echo.HTTPError wrapping sdk.ErrExpired", got)
	}

	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+iss.Mint(t, iss.Claims("ada")))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if got != errHandler || rec.Code != 500 {
		t.Fatalf("handler error: handler got %v, status %d; want the handler's error and 500", got, rec.Code)
	}
}
