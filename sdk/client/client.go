// Package client is a Go client of the jotguard issuer API:
// register, login, refresh, logout and me, the account endpoints (email
// verification, password reset and change, profile, deletion, sessions),
// the administration API (users, the audit log, service accounts), a
// service account's token source (the client credentials grant, with
// golang.org/x/oauth2/clientcredentials) and token introspection, with
// RFC 9457 problem+json errors as *Problem. A Session is an
// http.RoundTripper that attaches the access token to every request and
// refreshes it before it expires, with one refresh in flight however many
// requests run at once.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RefreshCookie is the name of the refresh-token cookie the issuer sets.
const RefreshCookie = "refresh_token"

// Problem codes of the issuer API (the "code" member of a Problem) that
// callers of this client may want to tell apart.
const (
	CodeInvalidRequest      = "invalid_request" // Problem.Errors names the failing fields
	CodeInvalidCredentials  = "invalid_credentials"
	CodeEmailTaken          = "email_taken"
	CodeUsernameTaken       = "username_taken"
	CodeWeakPassword        = "weak_password"
	CodeInvalidRefreshToken = "invalid_refresh_token"
	CodeInvalidToken        = "invalid_token" // the access token (Me, a Session's request)
	CodeAccountDisabled     = "account_disabled"
	CodeRateLimited         = "rate_limited"
	CodeBusy                = "busy" // password hashing saturated: retry after Problem.RetryAfter
	CodeUnavailable         = "unavailable"
)

// maxBody caps what the client reads from any response.
const maxBody = 1 << 20

// Client calls one issuer. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	now  func() time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client used for the issuer's API (default: one
// with a 30 s timeout over http.DefaultTransport). Its Transport is also the
// one a Session sends authorized requests through. Its Jar is not used: the
// issuer reads a refresh_token cookie before a refresh token in the body, and
// a jar holds the cookie of the last answer, maybe another session's.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithClock sets the clock used to turn expires_in into ExpiresAt.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a Client of the issuer at baseURL (e.g. "http://127.0.0.1:8080").
// A baseURL with a path prefix is kept: endpoints are resolved under it.
func New(baseURL string, opts ...Option) *Client {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		// Calls fail with this error rather than New returning one: a
		// constructor that cannot fail is easier to wire.
		u = &url.URL{Scheme: "invalid", Opaque: baseURL}
	}
	c := &Client{base: u, hc: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.hc.Jar != nil { // see WithHTTPClient
		hc := *c.hc
		hc.Jar = nil
		c.hc = &hc
	}
	return c
}

// User is an account as the issuer shows it (never a secret).
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Username      string    `json:"username,omitempty"`
	FirstName     string    `json:"first_name,omitempty"`
	LastName      string    `json:"last_name,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
}

// RegisterRequest is the body of POST /register.
type RegisterRequest struct {
	Email     string `json:"email"`
	Password  string `json:"password"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
}

// LoginRequest is the body of POST /login: one of Email, Username or
// Identifier (either), and Password.
type LoginRequest struct {
	Email      string `json:"email,omitempty"`
	Username   string `json:"username,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	Password   string `json:"password"`
}

// Tokens is what a login or a refresh returns.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int64     `json:"expires_in"`          // seconds, as sent
	ExpiresAt    time.Time `json:"expires_at,omitzero"` // when the request was sent + ExpiresIn
	RefreshToken string    `json:"refresh_token,omitempty"`
	User         *User     `json:"user,omitempty"`
}

// FieldError names one input field that failed validation.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problem is an RFC 9457 error answer. Use errors.As to get it from any
// method's error.
type Problem struct {
	Type   string       `json:"type,omitempty"`
	Title  string       `json:"title,omitempty"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code,omitempty"` // stable machine code, e.g. CodeEmailTaken
	Errors []FieldError `json:"errors,omitempty"`

	// RetryAfter is the Retry-After header (503, 429), 0 when absent. The
	// client never waits on its own.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jotguard issuer: %d", p.Status)
	if p.Code != "" {
		b.WriteString(" " + p.Code)
	}
	switch {
	case p.Detail != "":
		b.WriteString(": " + p.Detail)
	case p.Title != "":
		b.WriteString(": " + p.Title)
	}
	for _, f := range p.Errors {
		b.WriteString("; " + f.Field + " " + f.Reason)
	}
	return b.String()
}

// HasCode reports whether err is a *Problem with the given code.
func HasCode(err error, code string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Code == code
}

// Register creates an account (201).
func (c *Client) Register(ctx context.Context, r RegisterRequest) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodPost, "/register", "", r, http.StatusCreated, &u); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return &u, nil
}

// Login exchanges credentials for tokens; the refresh token comes from the
// refresh_token cookie of the answer.
func (c *Client) Login(ctx context.Context, r LoginRequest) (*Tokens, error) {
	t, err := c.tokens(ctx, "/login", r)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return t, nil
}

// Refresh exchanges a refresh token for new tokens (POST /access_token). The
// refresh token is rotated: the one passed in is dead afterwards, use
// Tokens.RefreshToken.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	t, err := c.tokens(ctx, "/access_token", refreshBody{refreshToken})
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	return t, nil
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// Logout ends the refresh token's session (scope "local" or ""), every session
// of the user ("global") or every other one ("others").
func (c *Client) Logout(ctx context.Context, refreshToken, scope string) error {
	path := "/logout"
	if scope != "" {
		path += "?scope=" + url.QueryEscape(scope)
	}
	if _, err := c.do(ctx, http.MethodPost, path, "", refreshBody{refreshToken}, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Me returns the user the access token belongs to.
func (c *Client) Me(ctx context.Context, accessToken string) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodGet, "/me", accessToken, nil, http.StatusOK, &u); err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	return &u, nil
}

func (c *Client) tokens(ctx context.Context, path string, body any) (*Tokens, error) {
	sent := c.now()
	var t Tokens
	res, err := c.do(ctx, http.MethodPost, path, "", body, http.StatusOK, &t)
	if err != nil {
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if t.ExpiresIn > 0 {
		t.ExpiresAt = sent.Add(time.Duration(t.ExpiresIn) * time.Second)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == RefreshCookie && ck.Value != "" && ck.MaxAge >= 0 {
			t.RefreshToken = ck.Value
		}
	}
	return &t, nil
}

// do sends one JSON request and decodes a JSON answer with status want into
// out; any other status becomes a *Problem.
func (c *Client) do(ctx context.Context, method, path, bearer string, in any, want int, out any) (*http.Response, error) {
	if c.base.Scheme == "invalid" {
		return nil, fmt.Errorf("invalid base URL %q", c.base.Opaque)
	}
	u := c.base.JoinPath()
	p, q, _ := strings.Cut(path, "?")
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+p, ""
	u.RawQuery = q
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, problemFrom(res, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decode %d answer: %w", res.StatusCode, err)
		}
	}
	return res, nil
}

// problemFrom reads an error answer. A body that is not problem+json (a proxy's
// HTML page) still yields a Problem with the status.
func problemFrom(res *http.Response, data []byte) *Problem {
	p := &Problem{}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		_ = json.Unmarshal(data, p) // best effort; Status is set below either way
		// The OAuth endpoints answer RFC 6749 errors: {error, error_description}.
		if p.Code == "" {
			var o struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(data, &o) == nil {
				p.Code, p.Detail = o.Error, o.Description
			}
		}
	}
	p.Status = res.StatusCode
	if p.Title == "" {
		p.Title = http.StatusText(res.StatusCode)
	}
	p.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
	return p
}

// retryAfter parses delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
