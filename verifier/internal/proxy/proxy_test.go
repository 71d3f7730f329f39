package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/jotguard/jotguard/verifier/internal/authz"
	"github.com/jotguard/jotguard/verifier/internal/proxy"
)

// echo is an upstream that answers the headers and path it received.
func echo(t *testing.T) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "header": r.Header})
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

type seen struct {
	Path   string
	Header http.Header
}

func TestProxy(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	checker, err := authz.New(authz.Options{Verifier: iss.Verifier(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Options{Upstream: echo(t), Checker: checker, PublicPaths: []string{"/static/", "/health"}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	c := iss.Claims("alice")
	c.Email, c.EmailVerified, c.Roles = "alice@example.com", true, []string{"a", "b"}
	tok := iss.Mint(t, c)

	spoof := func(r *http.Request) {
		r.Header.Set("X-Auth-Request-User", "root")
		r.Header.Set("x-auth-request-roles", "admin")
		r.Header["X_Auth_Request_Email"] = []string{"root@example.com"}
		r.Header.Set("X-Auth-Request-Anything", "x")
	}
	do := func(t *testing.T, path, auth string) (*http.Response, seen) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front.URL+path, nil)
		spoof(req)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var s seen
		if res.StatusCode == 200 {
			if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return res, s
	}
	identity := func(h http.Header) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			if authz.IsIdentityHeader(k) {
				out[k] = strings.Join(v, "|")
			}
		}
		return out
	}

	t.Run("valid token: real identity only, Authorization forwarded", func(t *testing.T) {
		res, s := do(t, "/api/x", "Bearer "+tok)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		want := map[string]string{"X-Auth-Request-User": "alice", "X-Auth-Request-Email": "alice@example.com",
			"X-Auth-Request-Session": c.SessionID, "X-Auth-Request-Roles": "a,b"}
		got := identity(s.Header)
		if len(got) != len(want) {
			t.Errorf("identity headers %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		if s.Header.Get("Authorization") != "Bearer "+tok {
			t.Errorf("Authorization not forwarded: %q", s.Header.Get("Authorization"))
		}
		if s.Header.Get("X-Forwarded-For") == "" {
			t.Errorf("no X-Forwarded-For")
		}
	})
	t.Run("no token: 401 challenge, nothing proxied", func(t *testing.T) {
		res, _ := do(t, "/api/x", "")
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("status %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("bad token: 401 invalid_token", func(t *testing.T) {
		res, _ := do(t, "/api/x", "Bearer a.b.c")
		if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("status %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("public paths pass without a token, spoofed headers stripped", func(t *testing.T) {
		for _, path := range []string{"/static/app.js", "/static", "/health"} {
			res, s := do(t, path, "")
			if res.StatusCode != 200 {
				t.Fatalf("%s: status %d", path, res.StatusCode)
			}
			if got := identity(s.Header); len(got) != 0 {
				t.Errorf("%s: identity headers reached the upstream: %v", path, got)
			}
		}
	})
	t.Run("not public", func(t *testing.T) {
		for _, path := range []string{"/staticky", "/healthz", "/%73tatic/x", "//static/x"} {
			res, _ := do(t, path, "")
			if res.StatusCode != 401 {
				t.Errorf("%s: status %d, want 401", path, res.StatusCode)
			}
		}
	})
	t.Run("ambiguous: 400 with or without a token, nothing proxied", func(t *testing.T) {
		for _, path := range []string{"/static/../admin", "/static/%2e%2e/admin", "/static/..%2fadmin", "/static/..;/admin"} {
			for _, auth := range []string{"", "Bearer " + tok} {
				res, _ := do(t, path, auth)
				if res.StatusCode != 400 || res.Header.Get("WWW-Authenticate") != "" {
					t.Errorf("%s (%q): status %d, WWW-Authenticate %q; want a plain 400", path, auth, res.StatusCode, res.Header.Get("WWW-Authenticate"))
				}
			}
		}
	})
}
