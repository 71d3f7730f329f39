// Package echoauth is the Echo v4 form of sdk.Middleware: it verifies the
// request's bearer token with an sdk.Verifier and hands the claims to the
// handler. It takes the same options (sdk.RequireRoles, sdk.RequireAudience)
// and answers failures with the one RFC 6750 mapping, sdk.Challenge.
package echoauth

import (
	"context"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/jotguard/jotguard/sdk"
)

// ClaimsKey is the echo.Context key under which Middleware stores the
// verified *sdk.Claims (c.Get(ClaimsKey)).
const ClaimsKey = "jotguard.claims"

// call carries one request through the net/http middleware and back.
type call struct {
	c       echo.Context
	next    echo.HandlerFunc
	authErr error
	nextErr error
}

type callKey struct{}

// Middleware verifies the bearer token of each request. On success the
// claims are in the request context (sdk.ClaimsFromContext) and in the echo
// context (ClaimsFrom, c.Get(ClaimsKey)). On failure it sets the
// WWW-Authenticate header sdk.Challenge gives (and Retry-After on 503) and
// returns an *echo.HTTPError with that status, whose Internal is the sdk
// error: a custom HTTPErrorHandler can use errors.Is(err, sdk.ErrExpired).
//
// opts are sdk.Middleware's: RequireRoles (403 insufficient_scope) and
// RequireAudience (401). sdk.WithErrorHandler is ignored here: answer errors
// in Echo's HTTPErrorHandler instead.
func Middleware(v *sdk.Verifier, opts ...sdk.MiddlewareOption) echo.MiddlewareFunc {
	// Reuse sdk.Middleware itself, so the token rules, the role and audience
	// checks and their errors are the same as for net/http handlers.
	opts = append(slices.Clip(opts), sdk.WithErrorHandler(func(_ http.ResponseWriter, r *http.Request, err error) {
		r.Context().Value(callKey{}).(*call).authErr = err
	}))
	check := sdk.Middleware(v, opts...)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		cl := r.Context().Value(callKey{}).(*call)
		claims, _ := sdk.ClaimsFromContext(r.Context())
		cl.c.SetRequest(r)
		cl.c.Set(ClaimsKey, claims)
		cl.nextErr = cl.next(cl.c)
	}))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl := &call{c: c, next: next}
			req := c.Request()
			check.ServeHTTP(c.Response(), req.WithContext(context.WithValue(req.Context(), callKey{}, cl)))
			if cl.authErr != nil {
				c.SetRequest(req) // the handler never ran: drop our context value
				return Error(c, cl.authErr)
			}
			return cl.nextErr
		}
	}
}

// Error answers a verification error the way Middleware does: it sets the
// RFC 6750 WWW-Authenticate header (Retry-After on 503) on c's response and
// returns the *echo.HTTPError for Echo's error handler to write.
func Error(c echo.Context, err error) *echo.HTTPError {
	status, challenge := sdk.Challenge(err)
	h := c.Response().Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	h.Set("Cache-Control", "no-store")
	return echo.NewHTTPError(status, http.StatusText(status)).SetInternal(err)
}

// ClaimsFrom returns the claims Middleware verified for this request.
func ClaimsFrom(c echo.Context) (*sdk.Claims, bool) {
	if cl, ok := c.Get(ClaimsKey).(*sdk.Claims); ok && cl != nil {
		return cl, true
	}
	return sdk.ClaimsFromContext(c.Request().Context())
}
