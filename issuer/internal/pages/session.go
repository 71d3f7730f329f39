package pages

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/httpapi"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

// A signed-in browser holds the API's session, nothing else: the refresh
// token cookie the API sets (Path=/, so it reaches /account/ too), and
// the access token of that session in a cookie of its own, scoped to the
// pages and living no longer than the token. A page request uses the
// access token while it is valid and its session is live; past that it
// rotates the refresh token once, as POST /access_token would, and keeps
// the new access token. So pages rotate the refresh token about once per
// access-token lifetime, not on every page load: fewer rotations, and
// fewer chances for a lost response to leave the browser with a
// just-rotated token. Concurrent loads that do rotate present the same
// token, and the store's grace window gives each the same successor.
// Ending the session (sign-out here or elsewhere, a password change, an
// administrator) ends the pages' access at once: every page checks that
// the access token's session is live.
const (
	accessCookie = "account_access_token"
	csrfCookie   = "account_csrf"
	csrfField    = "csrf_token"
)

// signedIn is the session of a page request.
type signedIn struct {
	access string
	user   auth.User
}

// errSignedOut: the request carries no live session.
var errSignedOut = errors.New("pages: not signed in")

// session returns the request's live session, rotating the refresh token
// when the access token has expired or was never set. Without one it
// clears the cookies and returns errSignedOut.
func (p *Pages) session(w http.ResponseWriter, r *http.Request) (signedIn, error) {
	ctx := r.Context()
	if c, err := r.Cookie(accessCookie); err == nil && c.Value != "" {
		u, err := p.o.Service.Me(ctx, c.Value)
		switch {
		case err == nil:
			return signedIn{access: c.Value, user: u}, nil
		case !errors.Is(err, auth.ErrInvalidAccessToken):
			return signedIn{}, err
		}
	}
	c, err := r.Cookie(httpapi.CookieName)
	if err != nil || c.Value == "" {
		p.clearSession(w)
		return signedIn{}, errSignedOut
	}
	if err := p.limit(r, ratelimit.Refresh); err != nil {
		return signedIn{}, err
	}
	tok, err := p.o.Service.Refresh(ctx, c.Value)
	switch {
	case errors.Is(err, auth.ErrInvalidRefreshToken):
		p.clearSession(w)
		return signedIn{}, errSignedOut
	case err != nil:
		return signedIn{}, err
	}
	p.setSession(w, tok)
	return signedIn{access: tok.AccessToken, user: tok.User}, nil
}

// setSession sets the cookies of a login or refresh: the API's refresh
// cookie, and the access token for the pages.
func (p *Pages) setSession(w http.ResponseWriter, tok auth.Tokens) {
	http.SetCookie(w, httpapi.RefreshCookie(tok.RefreshToken, p.o.RefreshTTL, p.o.CookieSecure))
	// It goes a little before the token does, so that a page never sends
	// an expired one; a token refused anyway is replaced just the same.
	ttl := max(tok.ExpiresIn-10*time.Second, tok.ExpiresIn/2)
	http.SetCookie(w, p.cookie(accessCookie, tok.AccessToken, max(int(ttl/time.Second), 1)))
}

// clearSession clears both session cookies.
func (p *Pages) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, httpapi.RefreshCookie("", 0, p.o.CookieSecure))
	http.SetCookie(w, p.cookie(accessCookie, "", -1))
}

// cookie is one of the pages' own cookies: HttpOnly, SameSite=Strict, sent
// only to the pages. maxAge is in seconds: 0 for a cookie that lives as
// long as the browser, < 0 to clear it.
func (p *Pages) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, Secure: p.o.CookieSecure,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
}

// csrfToken returns the request's CSRF token, setting a new one when it
// has none. The token is a random value in a cookie that only this site's
// pages can read back (HttpOnly, SameSite=Strict) and that every form
// repeats in a hidden field: a page of another site can neither read it
// nor set it, and its forms are refused before that anyway (Origin and
// Sec-Fetch-Site).
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && wellFormedCSRF(c.Value) {
		return c.Value
	}
	return p.newCSRF(w, r)
}

// newCSRF sets a new CSRF token (at sign-in and sign-out, so that a token
// from before does not outlive the change of user) and returns it.
func (p *Pages) newCSRF(w http.ResponseWriter, r *http.Request) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	t := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, p.cookie(csrfCookie, t, 0)) // a session cookie: gone with the browser
	// The same request may render a form: it must carry the new token.
	setCookieInRequest(r, csrfCookie, t)
	return t
}

// checkCSRF reports whether a form's token matches its cookie.
func (p *Pages) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !wellFormedCSRF(c.Value) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get(csrfField))) == 1
}

func wellFormedCSRF(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil && len(b) == 32
}

// clientIP is the client's address as the API sees it (behind trusted
// proxies, from X-Forwarded-For), or the connection's peer when the pages
// are served alone.
func clientIP(r *http.Request) string {
	if ip := httpapi.ClientIP(r.Context()); ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// setCookieInRequest replaces a cookie of r, so that what the handler
// reads next matches what it just set.
func setCookieInRequest(r *http.Request, name, value string) {
	cs := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cs {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
	r.AddCookie(&http.Cookie{Name: name, Value: value})
}

// limit spends one request of class for the client's network, as the API
// does: nil, or the refusal (*auth.RateLimitError, or ErrUnavailable).
func (p *Pages) limit(r *http.Request, class ratelimit.Class) error {
	if p.o.Limiter == nil {
		return nil
	}
	d, err := p.o.Limiter.Allow(r.Context(), ratelimit.ByNetwork(class, clientIP(r)))
	if err != nil {
		return err
	}
	return d.Err()
}
