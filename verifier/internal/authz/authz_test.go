package authz_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/jotguard/jotguard/verifier/internal/authz"
)

// unavailable is a revocation source whose state is unknown (the closed
// policy with a stale feed).
type unavailable struct{}

func (unavailable) Revoked(*sdk.Claims) (bool, error) {
	return false, errors.New("feed stale")
}

func newChecker(t *testing.T, iss *sdktest.Issuer, revs sdk.RevocationChecker, roles ...string) (*authz.Checker, map[string]int) {
	t.Helper()
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	seen := map[string]int{}
	c, err := authz.New(authz.Options{Verifier: v, RequiredRoles: roles,
		Observe: func(reason string, _ time.Duration) { seen[reason]++ }})
	if err != nil {
		t.Fatal(err)
	}
	return c, seen
}

// endpoint builds a check request the way each proxy sends it.
type endpoint struct {
	name string
	req  func(query string) *http.Request
}

var endpoints = []endpoint{
	{"forward-auth", func(q string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, authz.ForwardAuthPath+q, nil)
		r.Header.Set("X-Forwarded-Method", "POST")
		r.Header.Set("X-Forwarded-Uri", "/api/orders?x=1")
		r.Header.Set("X-Forwarded-Host", "app.example")
		return r
	}},
	{"auth-request", func(q string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, authz.AuthRequestPath+q, nil)
		r.Header.Set("X-Original-Method", "DELETE")
		r.Header.Set("X-Original-URI", "/api/orders/7")
		return r
	}},
	{"ext-authz", func(string) *http.Request {
		// Envoy: the original method, the original path after the prefix
		return httptest.NewRequest(http.MethodPost, authz.ExtAuthzPrefix+"/api/orders//7?x=1", nil)
	}},
}

func TestDecisions(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	revs := sdktest.NewRevocations(nil)
	revs.Add(revocation.Event{ID: "e1", Issuer: iss.URL, Subject: "bob", SessionID: "sess-revoked", At: time.Now()})
	checker, seen := newChecker(t, iss, revs)

	valid := func() sdk.Claims {
		c := iss.Claims("alice")
		c.Email, c.EmailVerified, c.Roles = "alice@example.com", true, []string{"user", "admin"}
		return c
	}
	mint := func(edit func(*sdk.Claims)) string {
		c := valid()
		edit(&c)
		return iss.Mint(t, c)
	}
	tests := []struct {
		name       string
		auth       string // Authorization header; "" none
		wantStatus int
		wantChall  string // WWW-Authenticate prefix
		wantReason string
	}{
		{"no token", "", 401, "Bearer", "missing_token"},
		{"another scheme", "Basic YTpi", 401, "Bearer", "missing_token"},
		{"valid", "Bearer " + mint(func(*sdk.Claims) {}), 200, "", "allowed"},
		{"garbage", "Bearer abc.def", 401, `Bearer error="invalid_token"`, "malformed"},
		{"expired", "Bearer " + mint(func(c *sdk.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }), 401, `Bearer error="invalid_token", error_description="token expired"`, "expired"},
		{"wrong audience", "Bearer " + mint(func(c *sdk.Claims) { c.Audience = jwt.ClaimStrings{"other"} }), 401, `Bearer error="invalid_token"`, "wrong_audience"},
		{"wrong issuer", "Bearer " + mint(func(c *sdk.Claims) { c.Issuer = "https://evil.example" }), 401, `Bearer error="invalid_token"`, "wrong_issuer"},
		{"revoked session", "Bearer " + mint(func(c *sdk.Claims) { c.Subject, c.SessionID = "bob", "sess-revoked" }), 401, `Bearer error="invalid_token", error_description="token revoked"`, "revoked"},
		{"a SET is not an access token", "Bearer " + iss.Sign(t, revocation.TokenType, valid()), 401, `Bearer error="invalid_token"`, "wrong_type"},
	}
	for _, ep := range endpoints {
		for _, tt := range tests {
			t.Run(ep.name+"/"+tt.name, func(t *testing.T) {
				clear(seen)
				r := ep.req("")
				if tt.auth != "" {
					r.Header.Set("Authorization", tt.auth)
				}
				w := httptest.NewRecorder()
				checker.ServeHTTP(w, r)
				if w.Code != tt.wantStatus {
					t.Fatalf("status %d, want %d (body %q)", w.Code, tt.wantStatus, w.Body)
				}
				if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, tt.wantChall) || (tt.wantChall == "" && got != "") {
					t.Errorf("WWW-Authenticate %q, want prefix %q", got, tt.wantChall)
				}
				if seen[tt.wantReason] != 1 {
					t.Errorf("observed %v, want one %q", seen, tt.wantReason)
				}
				if tt.wantStatus != 200 {
					if got := w.Header().Get(authz.HeaderUser); got != "" {
						t.Errorf("a denial carries %s: %q", authz.HeaderUser, got)
					}
					return
				}
				want := map[string]string{authz.HeaderUser: "alice", authz.HeaderEmail: "alice@example.com",
					authz.HeaderRoles: "user,admin"}
				for h, v := range want {
					if got := w.Header().Get(h); got != v {
						t.Errorf("%s = %q, want %q", h, got, v)
					}
				}
				if !strings.HasPrefix(w.Header().Get(authz.HeaderSession), "sess-") {
					t.Errorf("%s = %q", authz.HeaderSession, w.Header().Get(authz.HeaderSession))
				}
			})
		}
	}
}

func TestRoles(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	user := iss.Claims("u")
	user.Roles = []string{"user"}
	admin := iss.Claims("a")
	admin.Roles = []string{"admin"}
	userTok, adminTok := iss.Mint(t, user), iss.Mint(t, admin)

	t.Run("configured roles", func(t *testing.T) {
		checker, _ := newChecker(t, iss, nil, "admin", "ops")
		for _, ep := range endpoints {
			for tok, want := range map[string]int{userTok: 403, adminTok: 200} {
				r := ep.req("")
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				checker.ServeHTTP(w, r)
				if w.Code != want {
					t.Fatalf("%s: status %d, want %d", ep.name, w.Code, want)
				}
				if want == 403 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("%s: WWW-Authenticate %q", ep.name, w.Header().Get("WWW-Authenticate"))
				}
			}
		}
	})
	t.Run("?roles= on the check URL", func(t *testing.T) {
		checker, _ := newChecker(t, iss, nil)
		for _, ep := range endpoints[:2] { // ext-authz's query is the client's
			for tok, want := range map[string]int{userTok: 403, adminTok: 200} {
				r := ep.req("?roles=admin")
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				checker.ServeHTTP(w, r)
				if w.Code != want {
					t.Fatalf("%s: status %d, want %d", ep.name, w.Code, want)
				}
			}
		}
		// a client query on the ext-authz path does not add requirements
		r := httptest.NewRequest(http.MethodGet, authz.ExtAuthzPrefix+"/x?roles=admin", nil)
		r.Header.Set("Authorization", "Bearer "+userTok)
		w := httptest.NewRecorder()
		checker.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("ext-authz with a client ?roles=: %d, want 200", w.Code)
		}
	})
}

func TestUnknownAnswersAre503(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	tok := iss.Mint(t, iss.Claims("alice"))
	t.Run("revocation state unknown", func(t *testing.T) {
		checker, seen := newChecker(t, iss, unavailable{})
		for _, ep := range endpoints {
			r := ep.req("")
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			checker.ServeHTTP(w, r)
			if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
				t.Fatalf("%s: %d Retry-After=%q WWW-Authenticate=%q; want 503, Retry-After, no challenge",
					ep.name, w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
			}
		}
		if seen["revocation_unavailable"] != len(endpoints) {
			t.Errorf("observed %v", seen)
		}
	})
	t.Run("no keys yet", func(t *testing.T) {
		dead := sdktest.NewIssuer(t)
		dead.SetDown(true)
		v := dead.Verifier(t, func(c *sdk.Config) { c.UnknownKIDWait = 50 * time.Millisecond })
		checker, err := authz.New(authz.Options{Verifier: v})
		if err != nil {
			t.Fatal(err)
		}
		r := endpoints[0].req("")
		r.Header.Set("Authorization", "Bearer "+dead.Mint(t, dead.Claims("alice")))
		w := httptest.NewRecorder()
		checker.ServeHTTP(w, r)
		if w.Code != 503 {
			t.Fatalf("status %d, want 503", w.Code)
		}
		// a missing token is still a plain 401: no keys are needed to say no
		w = httptest.NewRecorder()
		checker.ServeHTTP(w, endpoints[0].req(""))
		if w.Code != 401 {
			t.Fatalf("no token, no keys: status %d, want 401", w.Code)
		}
	})
}

func TestRouting(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	checker, _ := newChecker(t, iss, nil)
	for path, want := range map[string]bool{
		"/authz/forward-auth": true, "/authz/auth-request": true, "/authz/ext-authz": true,
		"/authz/ext-authz/": true, "/authz/ext-authz/a/b": true, "/authz/ext-authzz": false,
		"/authz/forward-auth/x": false, "/authz": false,
	} {
		if got := authz.Match(path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
		w := httptest.NewRecorder()
		checker.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if wantCode := map[bool]int{true: 401, false: 404}[want]; w.Code != wantCode {
			t.Errorf("GET %s: %d, want %d", path, w.Code, wantCode)
		}
	}
}

func TestIsIdentityHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Auth-Request-User": true, "x-auth-request-email": true, "X_Auth_Request_User": true,
		"X-Auth-Request-Anything": true, "X-Auth-Request": false, "X-Auth-User": false, "Authorization": false,
	} {
		if got := authz.IsIdentityHeader(name); got != want {
			t.Errorf("IsIdentityHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSetIdentityNilClearsSpoofing(t *testing.T) {
	h := http.Header{authz.HeaderUser: {"root"}}
	authz.SetIdentity(h, nil)
	if v, ok := h[authz.HeaderUser]; !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("after SetIdentity(nil): %q", v)
	}
}

// An unverified address is not an identity an upstream may trust: the
// email header is set empty (over whatever the client sent), the others
// as usual.
func TestSetIdentityForwardsOnlyAVerifiedEmail(t *testing.T) {
	c := &sdk.Claims{Email: "ſam@example.com"}
	c.Subject = "u1"
	h := http.Header{authz.HeaderEmail: {"ceo@example.com"}}
	authz.SetIdentity(h, c)
	if v := h[authz.HeaderEmail]; len(v) != 1 || v[0] != "" || h.Get(authz.HeaderUser) != "u1" {
		t.Fatalf("unverified: %s %q, %s %q", authz.HeaderEmail, v, authz.HeaderUser, h.Get(authz.HeaderUser))
	}
	c.EmailVerified = true
	authz.SetIdentity(h, c)
	if got := h.Get(authz.HeaderEmail); got != c.Email {
		t.Fatalf("verified: %s %q, want %q", authz.HeaderEmail, got, c.Email)
	}
}

func BenchmarkForwardAuth(b *testing.B) {
	iss := sdktest.NewIssuer(b)
	v := iss.Verifier(b, func(c *sdk.Config) { c.Revocations = sdktest.NewRevocations(nil) })
	checker, err := authz.New(authz.Options{Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	r := endpoints[0].req("")
	r.Header.Set("Authorization", "Bearer "+iss.Mint(b, iss.Claims("alice")))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		checker.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
