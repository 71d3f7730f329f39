package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

type claimsKey struct{}

// ContextWithClaims returns ctx carrying c; ClaimsFromContext reads it.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims Middleware verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// BearerToken reads the token of an "Authorization: Bearer" header (the
// scheme is case-insensitive). It never looks at the URL query. It returns
// ErrMissingToken when the request carries no bearer credentials, and
// ErrMalformed when they are not one RFC 6750 b64token.
func BearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", ErrMissingToken
	case len(vals) > 1:
		return "", fmt.Errorf("%w: %d Authorization headers", ErrMalformed, len(vals))
	}
	scheme, token, found := strings.Cut(strings.TrimSpace(vals[0]), " ")
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return "", ErrMissingToken // another scheme carries no bearer token
	case !found:
		return "", fmt.Errorf("%w: Bearer without a token", ErrMalformed)
	}
	token = strings.TrimLeft(token, " ")
	if !isB64Token(token) {
		return "", fmt.Errorf("%w: the Bearer credentials are not a b64token", ErrMalformed)
	}
	return token, nil
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It runs on every request before the cache lookup, over the whole token,
// so it is one table load per byte.
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !b64tokenChar[body[i]] {
			return false
		}
	}
	return true
}

var b64tokenChar = func() (t [256]bool) {
	for b := range 256 {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
			t[b] = true
		case b == '-', b == '.', b == '_', b == '~', b == '+', b == '/':
			t[b] = true
		}
	}
	return t
}()

// Challenge is the one RFC 6750 mapping of a verification error, used by
// Middleware, by echoauth and by the verifier sidecar:
//   - no token: 401, "Bearer";
//   - ErrInsufficientScope: 403, Bearer error="insufficient_scope";
//   - ErrRevocationUnavailable, ErrNotReady: 503 and no challenge (the
//     answer is unknown, not "no": callers add Retry-After);
//   - anything else: 401, Bearer error="invalid_token" with a description
//     taken from the sentinel, which never says more than the reason.
func Challenge(err error) (status int, wwwAuthenticate string) {
	switch {
	case errors.Is(err, ErrMissingToken):
		return http.StatusUnauthorized, "Bearer"
	case errors.Is(err, ErrInsufficientScope):
		return http.StatusForbidden, `Bearer error="insufficient_scope", error_description="` +
			description(ErrInsufficientScope) + `"`
	case errors.Is(err, ErrRevocationUnavailable), errors.Is(err, ErrNotReady):
		return http.StatusServiceUnavailable, ""
	}
	desc := "invalid token"
	if s := sentinel(err); s != nil {
		desc = description(s)
	}
	return http.StatusUnauthorized, `Bearer error="invalid_token", error_description="` + desc + `"`
}

// description is a sentinel's text without its "sdk: " prefix, keeping only
// the characters RFC 6750 allows in error_description (no quote, no
// backslash).
func description(s error) string {
	msg := strings.TrimPrefix(s.Error(), "sdk: ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, msg)
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

type middleware struct {
	roles    []string
	audience string
	onError  func(w http.ResponseWriter, r *http.Request, err error)
}

// RequireRoles lets through only tokens holding at least one of roles; the
// others get 403 insufficient_scope.
func RequireRoles(roles ...string) MiddlewareOption {
	return func(m *middleware) { m.roles = append(m.roles, roles...) }
}

// RequireAudience lets through only tokens whose aud holds aud, a narrower
// check than the Verifier's any-of Config.Audience; the others get 401.
func RequireAudience(aud string) MiddlewareOption {
	return func(m *middleware) { m.audience = aud }
}

// WithErrorHandler replaces the default answer to a rejected request, which
// is Challenge's status and WWW-Authenticate (plus Retry-After on 503).
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) MiddlewareOption {
	return func(m *middleware) { m.onError = h }
}

// Middleware verifies the request's bearer token and passes the claims to
// the next handler in the request context (ClaimsFromContext).
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{onError: WriteError}
	for _, o := range opts {
		o(m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := m.check(v, r)
			if err != nil {
				m.onError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

func (m *middleware) check(v *Verifier, r *http.Request) (*Claims, error) {
	token, err := BearerToken(r.Header)
	if err != nil {
		return nil, err
	}
	c, err := v.Verify(r.Context(), token)
	switch {
	case err != nil:
		return nil, err
	case m.audience != "" && !slices.Contains(c.Audience, m.audience):
		return nil, fmt.Errorf("%w: %q is not in aud", ErrWrongAudience, m.audience)
	case len(m.roles) > 0 && !slices.ContainsFunc(c.Roles, func(r string) bool { return slices.Contains(m.roles, r) }):
		return nil, fmt.Errorf("%w: needs one of the roles %q", ErrInsufficientScope, m.roles)
	}
	return c, nil
}

// WriteError is Middleware's default error answer: Challenge's status and
// WWW-Authenticate, Retry-After on 503, and the status text as the body.
func WriteError(w http.ResponseWriter, _ *http.Request, err error) {
	status, challenge := Challenge(err)
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status), status)
}
