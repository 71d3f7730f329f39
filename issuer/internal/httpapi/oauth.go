package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/labstack/echo/v4"
)

// oauthError is an RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// readForm reads an application/x-www-form-urlencoded body, never the query.
func readForm(c echo.Context) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errUnsupportedType
	}
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, errMalformed
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, errMalformed
	}
	for k, vs := range v {
		if len(vs) > 1 { // RFC 6749 §3.2: parameters must not repeat
			return nil, errors.Join(errMalformed, errors.New("repeated parameter "+k))
		}
	}
	return v, nil
}

// oauthFail answers an RFC 6749 error, or a problem for backend trouble.
func (h *handler) oauthFail(c echo.Context, err error) error {
	p := classify(err)
	hdr := c.Response().Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	var code string
	status := http.StatusBadRequest
	switch {
	case p.Status == http.StatusRequestEntityTooLarge:
		return err
	case p.Status >= 500 || p.Status == http.StatusTooManyRequests:
		return err // problem+json with Retry-After
	case errors.Is(err, errUnsupportedType), errors.Is(err, errMalformed), errors.Is(err, auth.ErrInvalidInput):
		code = "invalid_request"
	case errors.Is(err, errUnsupportedGrant):
		code = "unsupported_grant_type"
	case errors.Is(err, auth.ErrInvalidClient):
		code, status = "invalid_client", http.StatusUnauthorized
	case errors.Is(err, auth.ErrInvalidAccessToken): // the caller's own Bearer token (introspection)
		code, status = "invalid_token", http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		code, status = "insufficient_scope", http.StatusForbidden
	default: // bad credentials, bad or reused refresh token, disabled account
		code = "invalid_grant"
	}
	return c.JSON(status, oauthError{Error: code, Description: p.Detail})
}

var errUnsupportedGrant = errors.New("unsupported grant_type")

// oauthToken is the token endpoint for golang.org/x/oauth2 clients.
func (h *handler) oauthToken(c echo.Context) error {
	f, err := readForm(c)
	if err != nil {
		return h.oauthFail(c, err)
	}
	class := ratelimit.Credentials
	if f.Get("grant_type") == "refresh_token" {
		class = ratelimit.Refresh
	}
	if err := h.limit(c, class); err != nil {
		return h.oauthFail(c, err)
	}
	var tok auth.Tokens
	switch f.Get("grant_type") {
	case "password":
		tok, err = h.doLogin(c, f.Get("username"), f.Get("password"))
	case "refresh_token":
		tok, err = h.o.Service.Refresh(c.Request().Context(), f.Get("refresh_token"))
		h.m.refreshes.WithLabelValues(outcome(err)).Inc()
	case "client_credentials":
		tok, err = h.clientToken(c, f)
	case "":
		err = &auth.ValidationError{Fields: []auth.FieldError{{Field: "grant_type", Reason: "is required"}}}
	default:
		err = errUnsupportedGrant
	}
	if err != nil {
		return h.oauthFail(c, err)
	}
	hdr := c.Response().Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	body := map[string]any{
		"access_token": tok.AccessToken,
		"token_type":   "Bearer",
		"expires_in":   int(tok.ExpiresIn / time.Second),
	}
	if tok.RefreshToken != "" { // none for a service account
		body["refresh_token"] = tok.RefreshToken
	}
	return c.JSON(http.StatusOK, body)
}

// oauthRevoke is RFC 7009: 200 whether or not the token was known.
func (h *handler) oauthRevoke(c echo.Context) error {
	f, err := readForm(c)
	if err != nil {
		return h.oauthFail(c, err)
	}
	tok := f.Get("token")
	if tok == "" {
		return h.oauthFail(c, &auth.ValidationError{Fields: []auth.FieldError{{Field: "token", Reason: "is required"}}})
	}
	if err := h.o.Service.RevokeToken(c.Request().Context(), tok, f.Get("token_type_hint")); err != nil {
		return err // only backend trouble: 503
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.NoContent(http.StatusOK)
}
