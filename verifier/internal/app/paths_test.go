package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/jotguard/jotguard/verifier/internal/authz"
)

// servlet is an upstream that maps the raw request path the way servlet
// containers (Tomcat, Jetty, Spring) do, and worse: it strips ";" path
// parameters from every segment, percent-decodes until nothing is left to
// decode (a chain of decoders), drops NUL bytes, reads an overlong UTF-8
// "." as ".", reads "\" as "/" and resolves dot segments. It serves the
// secret at /secret and records every path it served.
type servlet struct {
	URL    string
	mu     sync.Mutex
	served []string
}

const secret = "the secret"

func startServlet(t *testing.T) *servlet {
	t.Helper()
	s := &servlet{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p := servletPath(r.RequestURI)
		s.mu.Lock()
		s.served = append(s.served, p)
		s.mu.Unlock()
		if p == "/secret" {
			_, _ = io.WriteString(w, secret)
			return
		}
		_, _ = io.WriteString(w, "served "+p)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// servedSecret reports whether the secret was ever served.
func (s *servlet) servedSecret() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.served {
		if p == "/secret" {
			return true
		}
	}
	return false
}

func servletPath(requestURI string) string {
	p, _, _ := strings.Cut(requestURI, "?")
	for {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		next := strings.Join(segs, "/")
		if d, err := url.PathUnescape(next); err == nil {
			next = d
		}
		if next == p {
			break
		}
		p = next
	}
	p = strings.NewReplacer("\x00", "", "\xc0\xae", ".", "\xe0\x80\xae", ".", `\`, "/").Replace(p)
	return path.Clean("/" + p)
}

// ambiguous are request paths that a servlet-like upstream may resolve
// differently from the way they read: every one of them must be refused.
var ambiguous = []string{
	"/public/..;/secret",
	"/public/.;/secret",
	"/public/.;/../secret",
	"/public/..;jsessionid=x/secret",
	"/public/..;jsessionid=x/..;/secret",
	"/public/../secret",
	"/public/./../secret",
	"/public/%2e%2e/secret",
	"/public/%2E%2E/secret",
	"/public/.%2e/secret",
	"/public/%2e./secret",
	"/public/.%2E/secret",
	"/public/%2e%2e;x/secret",
	"/public/%2e;/../secret",
	"/public/..%3b/secret",
	"/public/..%3Bx/secret",
	"/public/..%2fsecret",
	"/public/..%2Fsecret",
	"/public/%2e%2e%2fsecret",
	"/public/..%5csecret",
	`/public/..\secret`,
	"/public/%252e%252e/secret",
	"/public/%25252e%25252e/secret",
	"/public/%252e%252e%252fsecret",
	"/public/.%00./secret",
	"/public/x%00",
	"/public/%c0%ae%c0%ae/secret",
	"/public/%e0%80%ae%e0%80%ae/secret",
	"/public/x%zz",
}

// unambiguous paths that look odd but mean one thing to every server.
var unambiguous = []string{
	"/public/app.js",
	"/public/a.b/c.d",
	"/public/.well-known/x",
	"/public/...",
	"/public/%2e%2e%2e",
	"/public/a;v=1/b",
	"/public/file%2ejs",
	"/public/a%20b",
	"/public/%c3%a9t%c3%a9",
}

// The test upstream is as lenient as it must be: these reach its secret.
func TestServletUpstreamResolvesTheAttacks(t *testing.T) {
	for _, p := range []string{"/public/..;/secret", "/public/..;jsessionid=x/secret", "/public/%2e%2e/secret",
		"/public/..%3b/secret", "/public/..%5csecret", `/public/..\secret`, "/public/%252e%252e/secret",
		"/public/.%00./secret", "/public/%c0%ae%c0%ae/secret", "/public/%e0%80%ae%e0%80%ae/secret"} {
		if got := servletPath(p); got != "/secret" {
			t.Errorf("servletPath(%q) = %q, want /secret", p, got)
		}
	}
}

// In proxy mode an ambiguous path is refused with 400 before any other
// decision, with or without a token, so a servlet-like upstream never
// serves /secret without a token.
func TestAmbiguousPathsNeverReachTheSecret(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	up := startServlet(t)
	v, tok := startProxy(t, iss, up.URL, map[string]string{"JOTGUARD_PUBLIC_PATHS": "/public"})
	addr := strings.TrimPrefix(v.URL, "http://")
	get := func(p, token string) (*http.Response, string) {
		req := "GET " + p + " HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
		if token != "" {
			req += "Authorization: Bearer " + token + "\r\n"
		}
		return raw(t, addr, req+"\r\n")
	}

	for _, token := range []string{"", tok} { // without a token first
		for _, p := range ambiguous {
			res, body := get(p, token)
			if res.StatusCode != http.StatusBadRequest || body == secret {
				t.Errorf("%s (token %v): %d %q, want 400", p, token != "", res.StatusCode, body)
			}
			if res.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s: WWW-Authenticate %q on a bad request", p, res.Header.Get("WWW-Authenticate"))
			}
		}
		if token == "" && up.servedSecret() {
			t.Errorf("without a token, the upstream served /secret; it served %q", up.served)
		}
	}
	for _, p := range unambiguous {
		if res, body := get(p, ""); res.StatusCode != http.StatusOK || !strings.HasPrefix(body, "served /public/") {
			t.Errorf("%s: %d %q, want the public path served", p, res.StatusCode, body)
		}
	}
	if res, _ := get("/secret", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/secret without a token: %d, want 401", res.StatusCode)
	}
	if res, body := get("/secret", tok); res.StatusCode != http.StatusOK || body != secret {
		t.Errorf("/secret with a token: %d %q", res.StatusCode, body)
	}
}

// The check endpoints judge the URI they are asked about by the same rule:
// an ambiguous one is denied with 403 (which nginx, Traefik and Envoy all
// pass on to the client), even with a valid token, and never allowed.
func TestCheckEndpointsDenyAmbiguousURIs(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL})
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))
	addr := strings.TrimPrefix(v.URL, "http://")
	ask := map[string]func(uri string) string{
		"forward-auth": func(uri string) string {
			return "GET " + authz.ForwardAuthPath + " HTTP/1.1\r\nHost: v\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: " + uri + "\r\n"
		},
		"auth-request": func(uri string) string {
			return "GET " + authz.AuthRequestPath + " HTTP/1.1\r\nHost: v\r\nX-Original-Method: GET\r\nX-Original-URI: " + uri + "\r\n"
		},
		"ext-authz": func(uri string) string {
			return "GET " + authz.ExtAuthzPrefix + uri + " HTTP/1.1\r\nHost: v\r\n"
		},
	}
	for name, req := range ask {
		t.Run(name, func(t *testing.T) {
			for _, uri := range ambiguous {
				want := http.StatusForbidden
				if name == "ext-authz" && strings.Contains(uri, "%zz") {
					want = http.StatusBadRequest // Go's own answer to a request line it cannot parse
				}
				res, _ := raw(t, addr, req(uri+"?a=b")+"Authorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
				if res.StatusCode != want || res.Header.Get(authz.HeaderUser) != "" ||
					res.Header.Get("WWW-Authenticate") != "" {
					t.Errorf("%s: %d, user %q, WWW-Authenticate %q; want a plain %d", uri, res.StatusCode,
						res.Header.Get(authz.HeaderUser), res.Header.Get("WWW-Authenticate"), want)
				}
			}
			for _, uri := range append([]string{"/secret", "/"}, unambiguous...) {
				res, _ := raw(t, addr, req(uri)+"Authorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
				if res.StatusCode != http.StatusOK || res.Header.Get(authz.HeaderUser) != "alice" {
					t.Errorf("%s: %d, want 200 for alice", uri, res.StatusCode)
				}
			}
		})
	}
}
