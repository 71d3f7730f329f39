package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/labstack/echo/v4"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{auth.ErrEmailTaken, 409, "email_taken"},
		{fmt.Errorf("mongostore: %w", auth.ErrUsernameTaken), 409, "username_taken"},
		{auth.ErrInvalidCredentials, 401, "invalid_credentials"},
		{fmt.Errorf("%w: %w", auth.ErrInvalidRefreshToken, auth.ErrRefreshReuse), 401, "invalid_refresh_token"},
		{auth.ErrInvalidAccessToken, 401, "invalid_token"},
		{auth.ErrDisabled, 403, "account_disabled"},
		{retryAfterError{auth.ErrRateLimited, 7}, 429, "rate_limited"},
		{fmt.Errorf("password: %w", auth.ErrBusy), 503, "busy"},
		{fmt.Errorf("redisstore: get: %w: %w", auth.ErrUnavailable, errors.New("dial tcp: refused")), 503, "unavailable"},
		{errors.New("anything unexpected"), 503, "unavailable"},
		{&auth.ValidationError{Fields: []auth.FieldError{{Field: "email", Reason: "is required"}}}, 400, "invalid_request"},
		{errTooLarge, 413, "body_too_large"},
		{errMalformed, 400, "malformed_body"},
		{errForeignOrigin, 403, "forbidden_origin"},
		{echo.ErrNotFound, 404, "not_found"},
		{echo.ErrMethodNotAllowed, 405, "method_not_allowed"},
		{echo.NewHTTPError(http.StatusRequestEntityTooLarge), 413, "body_too_large"},
	}
	for _, tt := range tests {
		p := classify(tt.err)
		if p.Status != tt.status || p.Code != tt.code || p.Type == "" || p.Title == "" {
			t.Errorf("classify(%v) = %+v, want %d %s", tt.err, p, tt.status, tt.code)
		}
		if p.Status >= 500 && p.Detail != "" {
			t.Errorf("classify(%v) leaks a backend detail: %q", tt.err, p.Detail)
		}
	}
	p := classify(&auth.ValidationError{Fields: []auth.FieldError{{Field: "email", Reason: "x"}, {Field: "password", Reason: "y"}}})
	if len(p.Errors) != 2 {
		t.Fatalf("validation fields: %+v", p)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(2, func() time.Time { return now })
	for i := range 2 {
		if _, ok := l.allow("k"); !ok {
			t.Fatalf("attempt %d limited", i)
		}
	}
	wait, ok := l.allow("k")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("3rd attempt: ok=%v wait=%v", ok, wait)
	}
	if _, ok := l.allow("other"); !ok {
		t.Fatal("another key was limited")
	}
	now = now.Add(wait)
	if _, ok := l.allow("k"); !ok {
		t.Fatal("not allowed again after the wait")
	}
}
