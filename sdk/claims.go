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
// and Verify returns it, so the two cannot drift.
type Claims struct {
	jwt.RegisteredClaims // iss, sub, aud, exp, iat, jti

	ClientID      string   `json:"client_id"`
	SessionID     string   `json:"sid"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles,omitempty"`
}

// Validate implements jwt.ClaimsValidator; the parser joins its error in.
func (c Claims) Validate() error {
	var errs []error
	if c.IssuedAt == nil {
		errs = append(errs, errors.New("iat is missing"))
	}
	if c.Subject == "" || c.SessionID == "" {
		errs = append(errs, errors.New("sub and sid are required"))
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
