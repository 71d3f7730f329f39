package sdk_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// The three measure the same ES256 token and key: Verify without cache
// (signature, header and claim checks, JWKS lookup, revocation), Verify
// from the cache (lookup, expiry and revocation), and golang-jwt alone.

func benchSetup(b *testing.B, cacheSize int) (*sdktest.Issuer, *sdk.Verifier, string) {
	iss := sdktest.NewIssuer(b)
	v := iss.Verifier(b, func(c *sdk.Config) {
		c.CacheSize = cacheSize
		c.Revocations = sdktest.NewRevocations(nil)
	})
	return iss, v, iss.Mint(b, iss.Claims("user-1"))
}

func BenchmarkVerifyUncached(b *testing.B) {
	_, v, tok := benchSetup(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	_, v, tok := benchSetup(b, sdk.DefaultCacheSize)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(b.Context(), tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawJWTParse(b *testing.B) {
	iss, _, tok := benchSetup(b, 0)
	key := func(*jwt.Token) (any, error) { return &iss.Key.PublicKey, nil }
	b.Run("MapClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.Parse(tok, key, jwt.WithValidMethods([]string{"ES256"})); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The fields of sdk.Claims decoded by golang-jwt alone: without the
	// sdk's strict decoding, its header, shape and revocation checks.
	b.Run("sdk.Claims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.ParseWithClaims(tok, new(plainClaims), key, jwt.WithValidMethods([]string{"ES256"})); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// plainClaims has the members of sdk.Claims and no UnmarshalJSON.
type plainClaims struct {
	jwt.RegisteredClaims
	ClientID      string   `json:"client_id"`
	SessionID     string   `json:"sid"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles,omitempty"`
}
