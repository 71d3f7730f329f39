package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
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
		{fmt.Errorf("%w: the admin role is required", auth.ErrForbidden), 403, "insufficient_scope"},
		{auth.ErrInvalidClient, 401, "invalid_client"},
		{auth.ErrUserNotFound, 404, "not_found"},
		{auth.ErrClientNotFound, 404, "not_found"},
		{&auth.RateLimitError{RetryAfter: 7 * time.Second}, 429, "rate_limited"},
		{fmt.Errorf("ratelimit: %w", auth.ErrRateLimited), 429, "rate_limited"},
		{fmt.Errorf("password: %w", auth.ErrBusy), 503, "busy"},
		{fmt.Errorf("redisstore: get: %w: %w", auth.ErrUnavailable, errors.New("dial tcp: refused")), 503, "unavailable"},
		{errors.New("anything unexpected"), 500, "internal"},
		{fmt.Errorf("auth: sign: %w", errors.New("pkcs11: token removed")), 500, "internal"},
		{fmt.Errorf("kafkaevents: %w: %w: kafka down; outbox down", errors.New("undelivered"), auth.ErrUnavailable), 503, "unavailable"},
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
		if p.Status >= 500 && p.Detail != "" && p.Detail != "internal error" {
			t.Errorf("classify(%v) leaks a backend detail: %q", tt.err, p.Detail)
		}
	}
	p := classify(&auth.ValidationError{Fields: []auth.FieldError{{Field: "email", Reason: "x"}, {Field: "password", Reason: "y"}}})
	if len(p.Errors) != 2 {
		t.Fatalf("validation fields: %+v", p)
	}
}

// signerFunc is an auth.Signer that answers what its function says.
type signerFunc func() (string, error)

func (f signerFunc) Sign(context.Context, string, jwt.Claims) (string, error) { return f() }

type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (*sdk.Claims, error) { return nil, sdk.ErrMalformed }

type nopEvents struct{}

func (nopEvents) Publish(context.Context, ...revocation.Event) error { return nil }

// newTestService is the auth service over memory stores, with a plain-text
// "hasher" and no events or mail: these tests look at HTTP answers only.
func newTestService(tb testing.TB, users auth.UserStore, signer auth.Signer) *auth.Service {
	tb.Helper()
	svc, err := auth.NewService(auth.Config{Issuer: "http://issuer.test", Audience: []string{"jotguard"}, AccessTTL: time.Minute},
		auth.Deps{Users: users, Sessions: memstore.NewSessions(time.Minute, nil), Hasher: plainHasher{},
			Signer: signer, Verifier: nopVerifier{}, Events: nopEvents{},
			Links: memstore.NewLinkTokens(), Mailer: nopMailer{}})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// nopMailer drops mail: these tests look at HTTP answers only.
type nopMailer struct{}

func (nopMailer) Send(context.Context, auth.Mail) error { return nil }

// plainHasher stores the password as its hash.
type plainHasher struct{}

func (plainHasher) Hash(_ context.Context, p string) (string, error) { return p, nil }
func (plainHasher) Verify(_ context.Context, p, h string) (bool, bool, error) {
	return p == h, false, nil
}
func (plainHasher) Dummy(context.Context, string) error { return nil }

// An error no table entry knows is a 500 internal whose body says nothing of
// its cause, logged at error level with the request id; a backend that says
// it is down (auth.ErrUnavailable) stays a 503 with Retry-After.
func TestUnknownErrorIsAGenericInternalError(t *testing.T) {
	for _, tt := range []struct {
		signErr    error
		status     int
		code       string
		retryAfter bool
		level      string
	}{
		{errors.New("pkcs11: token removed from slot 3"), 500, "internal", false, "ERROR"},
		{fmt.Errorf("keys: no signing key: %w", auth.ErrUnavailable), 503, "unavailable", true, "WARN"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			users := memstore.NewUsers()
			if err := users.Create(t.Context(), auth.User{ID: "u1", Email: "a@example.com", PasswordHash: "long enough password"}); err != nil {
				t.Fatal(err)
			}
			svc := newTestService(t, users, signerFunc(func() (string, error) { return "", tt.signErr }))
			var logs bytes.Buffer
			api := New(Options{Service: svc, Issuer: "http://issuer.test", Logger: logging.New(&logs, slog.LevelInfo, "json")})
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{"email":"a@example.com","password":"long enough password"}`))
			req.Header.Set("X-Request-Id", "req-42")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)

			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.status || p.Code != tt.code || p.Status != tt.status {
				t.Fatalf("login with a signer failing with %q: %d %s, want %d %s", tt.signErr, rec.Code, rec.Body, tt.status, tt.code)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After %q, want one: %v", rec.Header().Get("Retry-After"), tt.retryAfter)
			}
			if strings.Contains(rec.Body.String(), "pkcs11") || strings.Contains(rec.Body.String(), "signing key") {
				t.Errorf("the body shows the cause: %s", rec.Body)
			}
			if tt.code == "internal" && (p.Detail != "internal error" || p.Title == "") {
				t.Errorf("internal problem %+v, want the generic detail \"internal error\"", p)
			}
			var line struct {
				Level, RequestID, Err string
			}
			for l := range strings.Lines(logs.String()) {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["err"] != nil {
					line.Level, _ = m["level"].(string)
					line.RequestID, _ = m["request_id"].(string)
					line.Err, _ = m["err"].(string)
				}
			}
			if line.Level != tt.level || line.RequestID != "req-42" || !strings.Contains(line.Err, tt.signErr.Error()) {
				t.Errorf("logged %+v, want level %s, request_id req-42 and the cause %q", line, tt.level, tt.signErr)
			}
		})
	}
}

// Every request is in the access log at info (probes at debug): method,
// route, status, duration as text and the request id; never the raw path,
// query or a header, which could carry a token.
func TestAccessLog(t *testing.T) {
	var logs bytes.Buffer
	api := New(Options{Issuer: "http://issuer.test", Logger: logging.New(&logs, slog.LevelInfo, "json")})
	req := httptest.NewRequest(http.MethodPost, "/register?access_token=secret-in-query", strings.NewReader("{"))
	req.Header.Set("Authorization", "Bearer secret-in-header")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-7")
	api.ServeHTTP(httptest.NewRecorder(), req)
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var lines []map[string]any
	for l := range strings.Lines(logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("access log lines %v, want one (the probe only at debug)", lines)
	}
	m := lines[0]
	if m["level"] != "INFO" || m["method"] != "POST" || m["route"] != "/register" || m["status"] != float64(400) ||
		m["request_id"] != "req-7" || !strings.HasSuffix(fmt.Sprint(m["duration"]), "s") {
		t.Fatalf("access log line %v", m)
	}
	if strings.Contains(logs.String(), "secret-in") {
		t.Fatalf("a token reached the log: %s", logs.String())
	}
}
