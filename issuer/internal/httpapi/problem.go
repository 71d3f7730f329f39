package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/labstack/echo/v4"
)

// Errors of the HTTP layer itself.
var (
	errTooLarge        = errors.New("request body too large")
	errMalformed       = errors.New("malformed request body")
	errForeignOrigin   = errors.New("a request from another site's page is not allowed here")
	errNotFound        = errors.New("no such resource")
	errMethod          = errors.New("method not allowed")
	errUnsupportedType = errors.New("unsupported content type")
)

// problems is the one table from errors to HTTP: the first entry that
// errors.Is matches wins. Anything else is a 500 (internal): a bug, or a
// failure nobody classified. A backend that is down must say so with
// auth.ErrUnavailable (its adapter wraps every driver error with it), and
// then it is a 503 with Retry-After.
var problems = []struct {
	err    error
	status int
	code   string
	title  string
}{
	{auth.ErrWeakPassword, http.StatusBadRequest, "weak_password", "Password too short, too long or too common"},
	{auth.ErrInvalidLinkToken, http.StatusBadRequest, "invalid_link_token", "Invalid or expired link"},
	{auth.ErrInvalidInput, http.StatusBadRequest, "invalid_request", "Invalid request"},
	{errMalformed, http.StatusBadRequest, "malformed_body", "Malformed request body"},
	{errUnsupportedGrant, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type"},
	{errUnsupportedType, http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported content type"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"},
	{auth.ErrEmailTaken, http.StatusConflict, "email_taken", "Email already registered"},
	{auth.ErrUsernameTaken, http.StatusConflict, "username_taken", "Username already taken"},
	{auth.ErrInvalidCredentials, http.StatusUnauthorized, "invalid_credentials", "Invalid credentials"},
	{auth.ErrInvalidRefreshToken, http.StatusUnauthorized, "invalid_refresh_token", "Invalid refresh token"},
	{auth.ErrInvalidAccessToken, http.StatusUnauthorized, "invalid_token", "Invalid access token"},
	{auth.ErrInvalidClient, http.StatusUnauthorized, "invalid_client", "Invalid client credentials"},
	{auth.ErrForbidden, http.StatusForbidden, "insufficient_scope", "Insufficient scope"},
	{auth.ErrDisabled, http.StatusForbidden, "account_disabled", "Account disabled"},
	{auth.ErrEmailNotVerified, http.StatusForbidden, "email_not_verified", "Email address not verified"},
	{auth.ErrWrongPassword, http.StatusForbidden, "invalid_credentials", "Wrong password"},
	{auth.ErrSessionNotFound, http.StatusNotFound, "not_found", "Not found"},
	{auth.ErrUserNotFound, http.StatusNotFound, "not_found", "Not found"},
	{auth.ErrClientNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errForeignOrigin, http.StatusForbidden, "forbidden_origin", "Origin not allowed"},
	{errNotFound, http.StatusNotFound, "not_found", "Not found"},
	{errMethod, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"},
	{auth.ErrRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many attempts"},
	{auth.ErrBusy, http.StatusServiceUnavailable, "busy", "Server busy"},
	{auth.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service temporarily unavailable"},
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Code   string            `json:"code"`
	Errors []auth.FieldError `json:"errors,omitempty"`
}

// internal is the problem of an error the table does not know. Its body is
// generic: the cause is logged, never shown.
var internal = Problem{Type: "urn:jotguard:problem:internal", Title: "Internal server error",
	Status: http.StatusInternalServerError, Detail: "internal error", Code: "internal"}

// classify maps err to its problem; unknown errors are 500 internal.
func classify(err error) Problem {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			err = errNotFound
		case http.StatusMethodNotAllowed:
			err = errMethod
		case http.StatusRequestEntityTooLarge:
			err = errTooLarge
		case http.StatusBadRequest:
			err = errMalformed
		case http.StatusUnsupportedMediaType:
			err = errUnsupportedType
		}
	}
	for _, p := range problems {
		if errors.Is(err, p.err) {
			pr := Problem{Type: "urn:jotguard:problem:" + p.code, Title: p.title, Status: p.status, Code: p.code}
			var v *auth.ValidationError
			if errors.As(err, &v) {
				pr.Errors = v.Fields
				pr.Detail = "one or more fields are invalid"
			} else if p.status < 500 {
				pr.Detail = publicDetail(p.err)
			}
			return pr
		}
	}
	return internal
}

// publicDetail is the sentinel's text without its package prefix: safe to show.
func publicDetail(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "auth: " {
		return s[6:]
	}
	return s
}

// errorHandler is Echo's HTTPErrorHandler: every error becomes problem+json.
func (h *handler) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := classify(err)
	switch ctx := c.Request().Context(); {
	case p.Code == internal.Code: // the request id comes from ctx (logging)
		h.log.ErrorContext(ctx, "request failed: internal error", "path", c.Path(), "status", p.Status, "err", err)
	case p.Status >= 500:
		h.log.WarnContext(ctx, "request failed", "path", c.Path(), "status", p.Status, "err", err)
	}
	hdr := c.Response().Header()
	switch {
	case p.Status == http.StatusServiceUnavailable:
		hdr.Set("Retry-After", "1")
	case p.Status == http.StatusTooManyRequests:
		secs := 1 // whole seconds, rounded up: a retry after it passes
		var rl *auth.RateLimitError
		if errors.As(err, &rl) && rl.RetryAfter > time.Second {
			secs = int((rl.RetryAfter + time.Second - 1) / time.Second)
		}
		hdr.Set("Retry-After", strconv.Itoa(secs))
	}
	hdr.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	hdr.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	_ = jsonEncode(c.Response(), p)
}
