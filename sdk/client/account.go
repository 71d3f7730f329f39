package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Problem codes of the account endpoints.
const (
	CodeEmailNotVerified = "email_not_verified" // a login refused until the address is verified
	CodeInvalidLinkToken = "invalid_link_token" // a mailed link's token is unknown, used or expired
	CodeNotFound         = "not_found"          // RevokeSession: no such session of the user
)

// VerifyEmail uses the token of an email verification link (the token
// query parameter of the mailed link) and returns the user, whose address
// is now verified (or, for the link of an address change, switched).
func (c *Client) VerifyEmail(ctx context.Context, token string) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodPost, "/verify-email", "", tokenBody{Token: token}, http.StatusOK, &u); err != nil {
		return nil, fmt.Errorf("verify email: %w", err)
	}
	return &u, nil
}

type tokenBody struct {
	Token    string `json:"token"`
	Password string `json:"password,omitempty"`
}

// ResendVerification asks the issuer to mail the user of accessToken
// another verification link (nothing when the address is verified).
func (c *Client) ResendVerification(ctx context.Context, accessToken string) error {
	if _, err := c.do(ctx, http.MethodPost, "/verify-email/resend", accessToken, nil, http.StatusAccepted, nil); err != nil {
		return fmt.Errorf("resend verification: %w", err)
	}
	return nil
}

// ForgotPassword asks for a password reset link to be mailed to email. It
// succeeds alike whether or not the address has an account.
func (c *Client) ForgotPassword(ctx context.Context, email string) error {
	body := struct {
		Email string `json:"email"`
	}{email}
	if _, err := c.do(ctx, http.MethodPost, "/password/forgot", "", body, http.StatusAccepted, nil); err != nil {
		return fmt.Errorf("forgot password: %w", err)
	}
	return nil
}

// ResetPassword uses the token of a password reset link to set password;
// every session of the user ends.
func (c *Client) ResetPassword(ctx context.Context, token, password string) error {
	if _, err := c.do(ctx, http.MethodPost, "/password/reset", "", tokenBody{Token: token, Password: password},
		http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return nil
}

// ChangePassword changes the password of the user of accessToken; the
// user's other sessions end, this one lives on.
func (c *Client) ChangePassword(ctx context.Context, accessToken, currentPassword, newPassword string) error {
	body := struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}{currentPassword, newPassword}
	if _, err := c.do(ctx, http.MethodPost, "/me/password", accessToken, body, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// ProfileUpdate is the body of PATCH /me: nil fields stay as they are.
type ProfileUpdate struct {
	Username  *string `json:"username,omitempty"` // "" removes it
	FirstName *string `json:"first_name,omitempty"`
	LastName  *string `json:"last_name,omitempty"`
	// Email takes effect once the link the issuer mails to it is used
	// (VerifyEmail).
	Email *string `json:"email,omitempty"`
}

// UpdateProfile changes the profile of the user of accessToken and returns
// the user.
func (c *Client) UpdateProfile(ctx context.Context, accessToken string, p ProfileUpdate) (*User, error) {
	var u User
	if _, err := c.do(ctx, http.MethodPatch, "/me", accessToken, p, http.StatusOK, &u); err != nil {
		return nil, fmt.Errorf("update profile: %w", err)
	}
	return &u, nil
}

// DeleteAccount deletes the account of accessToken, whose password must
// be given.
func (c *Client) DeleteAccount(ctx context.Context, accessToken, password string) error {
	body := struct {
		Password string `json:"password"`
	}{password}
	if _, err := c.do(ctx, http.MethodDelete, "/me", accessToken, body, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return nil
}

// SessionInfo is one of a user's sessions (logins).
type SessionInfo struct {
	SID        string    `json:"sid"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"` // the session of the access token used to ask
}

// Sessions lists the sessions of the user of accessToken, the latest used
// first.
func (c *Client) Sessions(ctx context.Context, accessToken string) ([]SessionInfo, error) {
	var out struct {
		Sessions []SessionInfo `json:"sessions"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/me/sessions", accessToken, nil, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return out.Sessions, nil
}

// RevokeSession ends the session sid of the user of accessToken (a
// Problem with CodeNotFound when the user has none such).
func (c *Client) RevokeSession(ctx context.Context, accessToken, sid string) error {
	if sid == "" || strings.ContainsAny(sid, "/?#%") { // not a sid the issuer gives
		return fmt.Errorf("revoke session: %w", &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Title: "Not Found"})
	}
	if _, err := c.do(ctx, http.MethodDelete, "/me/sessions/"+sid, accessToken, nil, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}
