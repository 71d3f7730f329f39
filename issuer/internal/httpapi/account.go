package httpapi

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/labstack/echo/v4"
)

// The account routes: email verification, password reset and change,
// profile, deletion, sessions. Those that check a credential (a password,
// a link's token) or send mail spend the client network's credentials
// budget first; the Service adds the per-recipient and per-account limits.

// requireBearer returns the request's Bearer token, or the 401 (with its
// RFC 6750 challenge) of a request without one.
func requireBearer(c echo.Context) (string, error) {
	tok := bearer(c)
	if tok == "" {
		c.Response().Header().Set("WWW-Authenticate", "Bearer")
		return "", auth.ErrInvalidAccessToken
	}
	return tok, nil
}

// bearerFailed adds the RFC 6750 challenge to a refused access token, or
// to one that lacks the scope (role) the request needs.
func bearerFailed(c echo.Context, err error) error {
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrInvalidAccessToken):
		c.Response().Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case errors.Is(err, auth.ErrForbidden):
		c.Response().Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	}
	return err
}

func (h *handler) verifyEmail(c echo.Context) error {
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	in, err := readJSON(c, false, "token")
	if err != nil {
		return err
	}
	u, err := h.o.Service.VerifyEmail(c.Request().Context(), in["token"])
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, toJSON(u))
}

func (h *handler) resendVerification(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	if _, err := readJSON(c, true); err != nil {
		return err
	}
	if err := h.o.Service.ResendVerification(c.Request().Context(), tok); err != nil {
		return bearerFailed(c, err)
	}
	return c.NoContent(http.StatusAccepted)
}

func (h *handler) forgotPassword(c echo.Context) error {
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	in, err := readJSON(c, false, "email")
	if err != nil {
		return err
	}
	if err := h.o.Service.ForgotPassword(c.Request().Context(), in["email"]); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted) // the same whether the account exists or not
}

func (h *handler) resetPassword(c echo.Context) error {
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	in, err := readJSON(c, false, "token", "password")
	if err != nil {
		return err
	}
	if err := h.o.Service.ResetPassword(c.Request().Context(), in["token"], in["password"]); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) changePassword(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	in, err := readJSON(c, false, "current_password", "new_password")
	if err != nil {
		return err
	}
	err = h.o.Service.ChangePassword(c.Request().Context(), auth.ChangePasswordInput{AccessToken: tok,
		CurrentPassword: in["current_password"], NewPassword: in["new_password"], Network: ratelimit.NetworkOf(c.RealIP())})
	if err != nil {
		return bearerFailed(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) updateProfile(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	in, err := readJSON(c, false, "username", "first_name", "last_name", "email")
	if err != nil {
		return err
	}
	field := func(name string) *string {
		if v, ok := in[name]; ok {
			return &v
		}
		return nil
	}
	u, err := h.o.Service.UpdateProfile(c.Request().Context(), auth.ProfileInput{AccessToken: tok,
		Username: field("username"), FirstName: field("first_name"), LastName: field("last_name"), Email: field("email")})
	if err != nil {
		return bearerFailed(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, toJSON(u))
}

func (h *handler) deleteAccount(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		return err
	}
	in, err := readJSON(c, false, "password")
	if err != nil {
		return err
	}
	err = h.o.Service.DeleteAccount(c.Request().Context(), auth.DeleteAccountInput{AccessToken: tok,
		Password: in["password"], Network: ratelimit.NetworkOf(c.RealIP())})
	if err != nil {
		return bearerFailed(c, err)
	}
	h.clearCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// sessionJSON is one of the user's sessions as GET /me/sessions shows it.
type sessionJSON struct {
	SID        string    `json:"sid"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

func (h *handler) sessions(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	all, current, err := h.o.Service.Sessions(c.Request().Context(), tok)
	if err != nil {
		return bearerFailed(c, err)
	}
	out := make([]sessionJSON, 0, len(all))
	for _, s := range all {
		out = append(out, sessionJSON{SID: s.ID, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt,
			UserAgent: s.UserAgent, IP: s.IP, Current: s.ID == current})
	}
	slices.SortFunc(out, func(a, b sessionJSON) int { // the latest used first
		return cmp.Or(b.LastUsedAt.Compare(a.LastUsedAt), cmp.Compare(a.SID, b.SID))
	})
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (h *handler) revokeSession(c echo.Context) error {
	tok, err := requireBearer(c)
	if err != nil {
		return err
	}
	if err := h.o.Service.RevokeSession(c.Request().Context(), tok, c.Param("sid")); err != nil {
		return bearerFailed(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}
