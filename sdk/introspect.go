package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// Introspection is a token introspection response (RFC 7662 §2.2): Active,
// and for an active token its claims. The issuer's /oauth/introspect and
// IntrospectionHandler (the verifier's /authz/introspect) answer it alike.
type Introspection struct {
	Active        bool     `json:"active"`
	TokenType     string   `json:"token_type,omitempty"` // "Bearer"
	ClientID      string   `json:"client_id,omitempty"`
	Subject       string   `json:"sub,omitempty"`
	Issuer        string   `json:"iss,omitempty"`
	Audience      []string `json:"aud,omitempty"`
	ExpiresAt     int64    `json:"exp,omitempty"`
	IssuedAt      int64    `json:"iat,omitempty"`
	NotBefore     int64    `json:"nbf,omitempty"`
	ID            string   `json:"jti,omitempty"`
	SessionID     string   `json:"sid,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"` // a user's token only
	Roles         []string `json:"roles,omitempty"`
}

// NewIntrospection is the response for a token Verify accepted with claims
// c; nil c gives the one answer for anything else: {"active": false}, which
// says nothing of why.
func NewIntrospection(c *Claims) Introspection {
	if c == nil {
		return Introspection{}
	}
	in := Introspection{Active: true, TokenType: "Bearer", ClientID: c.ClientID, Subject: c.Subject,
		Issuer: c.Issuer, Audience: c.Audience, ID: c.ID, SessionID: c.SessionID, Email: c.Email, Roles: c.Roles}
	if c.ExpiresAt != nil {
		in.ExpiresAt = c.ExpiresAt.Unix()
	}
	if c.IssuedAt != nil {
		in.IssuedAt = c.IssuedAt.Unix()
	}
	if c.NotBefore != nil {
		in.NotBefore = c.NotBefore.Unix()
	}
	if !c.ServiceAccount() {
		v := c.EmailVerified
		in.EmailVerified = &v
	}
	return in
}

// TokenChecker verifies an access token: *Verifier has it.
type TokenChecker interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// maxIntrospectionBody bounds an introspection request's form: a token
// (at most MaxTokenSize) and a hint.
const maxIntrospectionBody = 2 * MaxTokenSize

// ErrNotServiceAccount is IntrospectionHandler's refusal of a caller whose
// token is valid but a user's: introspection is for services.
var ErrNotServiceAccount = fmt.Errorf("%w: a service account's token is required", ErrInsufficientScope)

// IntrospectionHandler answers RFC 7662 introspection requests (POST, form
// with token and an optional token_type_hint) from v alone: its keys, its
// revocation state, no call to the issuer. The caller authenticates with a
// service account's access token as Bearer, itself checked by v; a missing
// or invalid one gets 401 with an RFC 6750 challenge, a user's token 403
// insufficient_scope. The token asked about answers {"active": false}
// when Verify refuses it (invalid, expired, revoked, garbage), else
// active with its claims. When v cannot tell (no keys yet, or revocation
// state unknown under a closed policy), the answer is 503 with Retry-After,
// not a guess.
func IntrospectionHandler(v TokenChecker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		if err := introspectionCaller(r.Context(), v, r.Header); err != nil {
			WriteError(w, r, err)
			return
		}
		form, err := introspectionForm(w, r)
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		c, err := v.Verify(r.Context(), form.Get("token"))
		switch {
		case errors.Is(err, ErrRevocationUnavailable), errors.Is(err, ErrNotReady):
			WriteError(w, r, err) // 503: unknown, not inactive
			return
		case err != nil:
			c = nil
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(NewIntrospection(c))
	})
}

// introspectionCaller checks the caller's Bearer token: a service
// account's, valid.
func introspectionCaller(ctx context.Context, v TokenChecker, h http.Header) error {
	tok, err := BearerToken(h)
	if err != nil {
		return err
	}
	c, err := v.Verify(ctx, tok)
	switch {
	case err != nil:
		return err
	case !c.ServiceAccount():
		return ErrNotServiceAccount
	}
	return nil
}

// introspectionForm reads the form body: application/x-www-form-urlencoded,
// token present, no parameter repeated, never the URL query.
func introspectionForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("the body must be application/x-www-form-urlencoded")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIntrospectionBody))
	if err != nil {
		return nil, errors.New("the body is too large or unreadable")
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, errors.New("the body is not a form")
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return nil, fmt.Errorf("parameter %.20q repeated", k)
		}
	}
	if form.Get("token") == "" {
		return nil, errors.New("token is required")
	}
	return form, nil
}

// writeOAuthError writes an RFC 6749 §5.2 error body.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
