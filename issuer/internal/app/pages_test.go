package app_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// pageForm posts a form of the pages as a browser on the issuer's own
// origin would, with the CSRF cookie and token of csrf.
func (s *issuer) pageForm(path, csrf string, v url.Values, hdr ...string) resp {
	s.t.Helper()
	v.Set("csrf_token", csrf)
	return s.form(path, v, append([]string{"Origin", s.base, "Sec-Fetch-Site", "same-origin",
		"Cookie", "account_csrf=" + csrf}, hdr...)...)
}

// pageCSRF opens a page and returns the CSRF token it set.
func (s *issuer) pageCSRF(path string) string {
	s.t.Helper()
	r := s.do("GET", path, "")
	c := r.cookie("account_csrf")
	if r.StatusCode != http.StatusOK || c == nil {
		s.t.Fatalf("GET %s: %d, no CSRF cookie", path, r.StatusCode)
	}
	return c.Value
}

// The issuer serves the pages inside its API: with the request id and the
// client's address as the API sees it (a trusted proxy's X-Forwarded-For),
// the API's session (its refresh cookie, its tokens, checked against the
// revocation topic), and their own origin check, so a page served on
// JOTGUARD_PUBLIC_URL's host works where the API's check would refuse.
func TestPagesInTheIssuer(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_TRUSTED_PROXIES": "127.0.0.1/32"})
	if r := s.do("GET", "/account", ""); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/account/" {
		t.Fatalf("GET /account: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r := s.do("GET", "/account/login", "")
	if r.StatusCode != http.StatusOK || r.Header.Get("X-Request-Id") == "" || r.Header.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(string(r.body), "<h1>Sign in</h1>") {
		t.Fatalf("sign-in page: %d %v\n%s", r.StatusCode, r.Header, r.body)
	}

	email := s.register(pw)
	csrf := s.pageCSRF("/account/login")
	// The pages' sign-ins count in jotguard_logins_total like the API's.
	const okLogins, badLogins = `jotguard_logins_total{outcome="ok"}`, `jotguard_logins_total{outcome="invalid_credentials"}`
	ok0, bad0 := max(s.metric(okLogins), 0), max(s.metric(badLogins), 0)
	if r := s.pageForm("/account/login", csrf, url.Values{"identifier": {email}, "password": {"not the password"}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("sign in with a wrong password: %d", r.StatusCode)
	}
	r = s.pageForm("/account/login", csrf, url.Values{"identifier": {email}, "password": {pw}},
		"X-Forwarded-For", "203.0.113.77", "User-Agent", "Mozilla/5.0 (Windows NT 10.0) Firefox/140.0")
	refresh, access := r.cookie("refresh_token"), r.cookie("account_access_token")
	if r.StatusCode != http.StatusSeeOther || refresh == nil || access == nil {
		t.Fatalf("sign in: %d %s", r.StatusCode, r.body)
	}
	if c, _ := s.verify(access.Value); c.Email != email {
		t.Fatalf("the pages' access token is for %q", c.Email)
	}
	if ok, bad := s.metric(okLogins), s.metric(badLogins); ok != ok0+1 || bad != bad0+1 {
		t.Fatalf("logins counted: ok %v → %v, invalid_credentials %v → %v; want one more of each", ok0, ok, bad0, bad)
	}
	// The refresh cookie is the API's: POST /access_token takes it.
	if r := s.refresh(refresh.Value); r.StatusCode != http.StatusOK {
		t.Fatalf("the pages' refresh cookie at /access_token: %d %s", r.StatusCode, r.body)
	}
	page := s.do("GET", "/account/", "", "Cookie", "account_access_token="+access.Value)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "Firefox on Windows") ||
		!strings.Contains(string(page.body), "203.0.113.77 · last used") {
		t.Fatalf("account page: %d\n%s", page.StatusCode, page.body)
	}

	// Signed out through the API: the page's access token dies with the
	// session, and the page sends the browser to the sign-in page.
	at, rt := s.login(email, pw)
	if r := s.do("POST", "/logout?scope=global", "", "Authorization", "Bearer "+at, "Cookie", "refresh_token="+rt); r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout everywhere: %d", r.StatusCode)
	}
	page = s.do("GET", "/account/", "", "Cookie", "account_access_token="+access.Value)
	if page.StatusCode != http.StatusSeeOther || page.Header.Get("Location") != "/account/login" {
		t.Fatalf("account page after logout everywhere: %d %s", page.StatusCode, page.Header.Get("Location"))
	}

	// A body over the limit, and a form from another site: pages, not
	// problem documents.
	big := url.Values{"identifier": {strings.Repeat("x", 70<<10)}}
	for _, r := range []resp{
		s.pageForm("/account/login", csrf, big),
		s.form("/account/login", url.Values{"identifier": {email}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"),
	} {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !regexp.MustCompile(`<h1>[^<]+</h1>`).Match(r.body) {
			t.Errorf("%d %s: want an HTML page\n%.300s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
		}
	}
}

// JOTGUARD_PAGES=off serves no page: the links of the mail then lead to
// pages of the operator's own.
func TestPagesOff(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_PAGES": "off"})
	for _, p := range []string{"/account/login", "/account/", "/account"} {
		if r := s.do("GET", p, ""); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with the pages off: %d", p, r.StatusCode)
		}
	}
}
