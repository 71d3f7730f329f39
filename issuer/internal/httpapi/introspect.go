package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/jotguard/jotguard/sdk"
	"github.com/labstack/echo/v4"
)

// Service accounts at the OAuth endpoints: their credentials (RFC 6749
// §2.3.1, HTTP Basic or the form), the client credentials grant, and token
// introspection (RFC 7662).

// errBothCredentials: a request authenticated its client twice (RFC 6749
// §2.3 allows one method per request).
var errBothCredentials = errors.Join(errMalformed, errors.New("client credentials both in the Authorization header and in the body"))

// clientCredentials returns the client id and secret of a request: from
// HTTP Basic (each form-urlencoded, RFC 6749 §2.3.1), or from the form's
// client_id and client_secret. basic says which.
func clientCredentials(c echo.Context, f url.Values) (id, secret string, basic bool, err error) {
	a := c.Request().Header.Get("Authorization")
	if len(a) < 6 || !strings.EqualFold(a[:6], "basic ") {
		return f.Get("client_id"), f.Get("client_secret"), false, nil
	}
	if f.Has("client_id") || f.Has("client_secret") {
		return "", "", true, errBothCredentials
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a[6:]))
	if err != nil {
		return "", "", true, auth.ErrInvalidClient
	}
	u, p, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", true, auth.ErrInvalidClient
	}
	if id, err = url.QueryUnescape(u); err == nil {
		secret, err = url.QueryUnescape(p)
	}
	if err != nil {
		return "", "", true, auth.ErrInvalidClient
	}
	return id, secret, true, nil
}

// clientToken is the client credentials grant of /oauth/token.
func (h *handler) clientToken(c echo.Context, f url.Values) (auth.Tokens, error) {
	id, secret, basic, err := clientCredentials(c, f)
	if err == nil && id == "" && secret == "" {
		err = auth.ErrInvalidClient // RFC 6749 §5.2: no client authentication included
	}
	if err == nil {
		var tok auth.Tokens
		if tok, err = h.o.Service.ClientToken(c.Request().Context(), id, secret); err == nil {
			return tok, nil
		}
	}
	return auth.Tokens{}, basicFailed(c, basic, err)
}

// basicFailed adds the HTTP Basic challenge to refused client credentials
// that came in the Authorization header (RFC 6749 §5.2).
func basicFailed(c echo.Context, basic bool, err error) error {
	if basic && errors.Is(err, auth.ErrInvalidClient) {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="jotguard"`)
	}
	return err
}

// oauthIntrospect is RFC 7662 for service accounts: the caller
// authenticates with its client credentials (HTTP Basic or the form) or
// its access token (Bearer). The issuer answers from its own state: the
// token's signature and revocations (the revocation topic), and its
// session or service account as stored now.
func (h *handler) oauthIntrospect(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	f, err := readForm(c)
	if err != nil {
		return h.oauthFail(c, err)
	}
	var caller auth.IntrospectionCaller
	basic := false
	if tok := bearer(c); tok != "" {
		if f.Has("client_id") || f.Has("client_secret") {
			return h.oauthFail(c, errBothCredentials)
		}
		caller.Bearer = tok
	} else {
		caller.ClientID, caller.ClientSecret, basic, err = clientCredentials(c, f)
		if err == nil && caller.ClientID == "" && caller.ClientSecret == "" {
			basic, err = true, auth.ErrInvalidClient // RFC 7662 §2.1: the endpoint requires authorization
		}
		if err != nil {
			return h.oauthFail(c, basicFailed(c, basic, err))
		}
	}
	token := f.Get("token")
	if token == "" {
		return h.oauthFail(c, &auth.ValidationError{Fields: []auth.FieldError{{Field: "token", Reason: "is required"}}})
	}
	claims, err := h.o.Service.Introspect(c.Request().Context(), caller, token)
	if err != nil {
		return h.oauthFail(c, basicFailed(c, basic, bearerFailed(c, err)))
	}
	return c.JSON(http.StatusOK, sdk.NewIntrospection(claims))
}
