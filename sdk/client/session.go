package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultRefreshMargin is how long before expiry a Session refreshes, unless
// half the token's lifetime is shorter: a session of 3 s tokens refreshes
// with 1.5 s left, not before every request.
const DefaultRefreshMargin = 30 * time.Second

// Session holds one login's tokens. It is an http.RoundTripper: a request to
// the issuer's origin, or to an origin given with WithOrigins, gets
// "Authorization: Bearer <access token>"; the access token is refreshed
// when less than the margin is left, and once more on a 401 answer. However
// many requests run at once, one refresh is in flight, and the rotated
// refresh token replaces the old one. Safe for concurrent use.
//
// A request to any other origin (scheme, host and port), redirects
// included, is sent as it is, without the token, and a 401 from it triggers
// no refresh: a redirect can't carry the token to another host.
type Session struct {
	c         *Client
	base      http.RoundTripper
	margin    time.Duration // < 0: the default, see marginFor
	onRefresh func(Tokens)
	origins   map[string]bool // where the token may go

	mu     sync.Mutex
	tokens Tokens
	flight singleflight.Group
}

var _ http.RoundTripper = (*Session)(nil)

// SessionOption configures a Session.
type SessionOption func(*Session)

// WithRefreshMargin sets how long before expiry the access token is
// refreshed, whatever its lifetime (default: DefaultRefreshMargin, or half
// the lifetime when that is shorter).
func WithRefreshMargin(d time.Duration) SessionOption {
	return func(s *Session) { s.margin = max(d, 0) }
}

// WithOrigins adds the origins of services the access token may be sent to,
// besides the issuer's, e.g. "https://api.example.com" (a path is ignored;
// the port defaults to the scheme's).
func WithOrigins(urls ...string) SessionOption {
	return func(s *Session) {
		for _, raw := range urls {
			if u, err := url.Parse(raw); err == nil && u.Host != "" {
				s.origins[origin(u)] = true
			}
		}
	}
}

// origin is u's scheme://host:port, lower-cased, with the default port
// filled in, so that two spellings of one origin compare equal.
func origin(u *url.URL) string {
	scheme, port := strings.ToLower(u.Scheme), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// OnRefresh is called after each successful refresh with the new tokens, for
// example to persist the rotated refresh token. It must not block long.
func OnRefresh(fn func(Tokens)) SessionOption { return func(s *Session) { s.onRefresh = fn } }

// Session returns a Session starting from tokens (from Login or Refresh).
// Authorized requests go through the Client's http.Client transport.
func (c *Client) Session(tokens *Tokens, opts ...SessionOption) *Session {
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	s := &Session{c: c, base: base, margin: -1, origins: map[string]bool{origin(c.base): true}}
	if tokens != nil {
		s.tokens = *tokens
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// HTTPClient returns an http.Client whose requests carry the session's
// access token.
func (s *Session) HTTPClient() *http.Client {
	return &http.Client{Transport: s, Timeout: s.c.hc.Timeout}
}

// Tokens returns the current tokens, with the latest refresh token.
func (s *Session) Tokens() Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// ErrNoRefreshToken is returned when the access token needs refreshing and
// the session has no refresh token.
var ErrNoRefreshToken = errors.New("client: session has no refresh token")

// AccessToken returns a usable access token, refreshing it first when less
// than the margin is left.
func (s *Session) AccessToken(ctx context.Context) (string, error) {
	t := s.Tokens()
	if !s.expiring(t) {
		return t.AccessToken, nil
	}
	fresh, err := s.refresh(ctx, t.AccessToken)
	if err != nil {
		if !t.ExpiresAt.IsZero() && s.c.now().Before(t.ExpiresAt) && t.AccessToken != "" {
			return t.AccessToken, nil // not expired yet: use it and try again next time
		}
		return "", err
	}
	return fresh, nil
}

func (s *Session) expiring(t Tokens) bool {
	if t.AccessToken == "" {
		return true
	}
	return !t.ExpiresAt.IsZero() && !s.c.now().Add(s.marginFor(t)).Before(t.ExpiresAt)
}

// marginFor returns how long before t expires it is refreshed.
func (s *Session) marginFor(t Tokens) time.Duration {
	switch {
	case s.margin >= 0:
		return s.margin
	case t.ExpiresIn > 0:
		return min(DefaultRefreshMargin, time.Duration(t.ExpiresIn)*time.Second/2)
	}
	return DefaultRefreshMargin
}

// refresh rotates the tokens unless someone already replaced stale, the
// access token the caller found wanting. Concurrent callers share one call.
func (s *Session) refresh(ctx context.Context, stale string) (string, error) {
	v, err, _ := s.flight.Do("refresh", func() (any, error) {
		cur := s.Tokens()
		if cur.AccessToken != stale && !s.expiring(cur) {
			return cur.AccessToken, nil // a refresh finished just before this one began
		}
		if cur.RefreshToken == "" {
			return nil, ErrNoRefreshToken
		}
		// The server rotates the refresh token when it answers: don't let one
		// caller's cancellation lose the successor that every caller needs.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		next, err := s.c.Refresh(rctx, cur.RefreshToken)
		if err != nil {
			return nil, err
		}
		if next.RefreshToken == "" {
			next.RefreshToken = cur.RefreshToken // not rotated by this server
		}
		if next.User == nil {
			next.User = cur.User
		}
		s.mu.Lock()
		s.tokens = *next
		s.mu.Unlock()
		if s.onRefresh != nil {
			s.onRefresh(*next)
		}
		return next.AccessToken, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// RoundTrip implements http.RoundTripper. A request that gets 401 is sent once
// more with a refreshed token when its body can be replayed (no body, or
// GetBody set, as http.NewRequest does for in-memory bodies).
func (s *Session) RoundTrip(req *http.Request) (*http.Response, error) {
	if !s.origins[origin(req.URL)] {
		return s.base.RoundTrip(req) // not ours to authorize
	}
	tok, err := s.AccessToken(req.Context())
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("client: access token: %w", err)
	}
	res, err := s.base.RoundTrip(authorized(req, tok, req.Body))
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	body := req.Body
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return res, nil
		}
		if body, err = req.GetBody(); err != nil {
			return res, nil
		}
	}
	fresh, err := s.refresh(req.Context(), tok)
	if err != nil || fresh == tok {
		if body != req.Body {
			body.Close()
		}
		return res, nil // the caller sees the 401
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
	res.Body.Close()
	return s.base.RoundTrip(authorized(req, fresh, body))
}

func authorized(req *http.Request, token string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// Logout ends this session at the issuer with scope "local", "global" or
// "others" (see Client.Logout).
func (s *Session) Logout(ctx context.Context, scope string) error {
	return s.c.Logout(ctx, s.Tokens().RefreshToken, scope)
}
