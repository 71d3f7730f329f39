// Package sdk verifies jotguard access tokens locally: signature against the
// issuer's JWKS, RFC 9068 claims, and revocations fed from Kafka. It is the
// contract between the issuer, the verifier sidecar and downstream services.
package sdk

import (
	"encoding/json"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk/internal/strictjson"
)

// TokenType is the JOSE "typ" of an access token (RFC 9068).
const TokenType = "at+jwt"

// MaxTokenSize is the largest token Verify parses; longer ones are rejected
// before any decoding.
const MaxTokenSize = 8 << 10

// Claims is an access token's payload (RFC 9068). The issuer mints this type
// (what it signs is Signable) and Verify returns it, so the two cannot
// drift.
//
// A user's token carries the session id (sid), email and email_verified. A
// service account's token (the client credentials grant) has sub equal to
// client_id and no sid, email or email_verified: see ServiceAccount.
type Claims struct {
	jwt.RegisteredClaims // iss, sub, aud, exp, iat, jti

	ClientID      string   `json:"client_id"`
	SessionID     string   `json:"sid"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles,omitempty"`
}

// ServiceAccount reports whether c is a service account's token: sub is the
// client_id and there is no session. A user's token always has a sid.
func (c *Claims) ServiceAccount() bool {
	return c.SessionID == "" && c.Subject != "" && c.Subject == c.ClientID
}

// Validate implements jwt.ClaimsValidator; the parser joins its error in.
// A token without sid is valid only as a service account's (sub equal to
// client_id, no email): a user's token without its session could not be
// revoked with it.
func (c Claims) Validate() error {
	var errs []error
	if c.IssuedAt == nil {
		errs = append(errs, errors.New("iat is missing"))
	}
	switch {
	case c.Subject == "":
		errs = append(errs, errors.New("sub is required"))
	case c.SessionID == "" && !c.ServiceAccount():
		errs = append(errs, errors.New("sid is required (only a service account's token, whose sub is its client_id, has none)"))
	case c.ServiceAccount() && (c.Email != "" || c.EmailVerified):
		errs = append(errs, errors.New("a service account's token has no email"))
	}
	if c.ID == "" {
		errs = append(errs, errors.New("jti is missing"))
	}
	return errors.Join(errs...)
}

// claimRules: the members of Claims, and the NumericDates among them.
var claimRules = strictjson.NewRules(
	[]string{"iss", "sub", "aud", "jti", "client_id", "sid", "email", "email_verified", "roles"},
	"exp", "nbf", "iat")

// Signable is what to sign for c: c itself for a user's token; for a
// service account's (ServiceAccount), the same claims without sid and a
// false email_verified, which only a user has. Claims has no MarshalJSON
// of its own, so that encoding a user's token, on every refresh, costs
// nothing more.
func (c Claims) Signable() jwt.Claims {
	if !c.ServiceAccount() {
		return c
	}
	type plain Claims // without the methods; its RegisteredClaims' remain
	// The outer fields shadow the embedded ones of the same JSON name.
	return struct {
		plain
		SessionID     string `json:"sid,omitempty"`
		EmailVerified bool   `json:"email_verified,omitempty"`
	}{plain(c), c.SessionID, c.EmailVerified}
}

// UnmarshalJSON decodes claims strictly: a duplicate member, a case
// variant of a member of Claims ("EXP" next to "exp"), or a NumericDate
// that is not a JSON number ("exp": "9999999999") is an error, where
// encoding/json alone would pick one reading silently.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if err := strictjson.Check(b, claimRules); err != nil {
		return err
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}
