package sdk_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
)

// TestSelectableAlgorithms: EdDSA and RS256 keys from a JWKS verify, and
// Config.Algorithms narrows what is accepted.
func TestSelectableAlgorithms(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	store := jwkset.NewMemoryStorage()
	for _, k := range []struct {
		kid string
		alg jwkset.ALG
		pub crypto.PublicKey
	}{{"ed", jwkset.AlgEdDSA, edPub}, {"rsa", jwkset.AlgRS256, &rsaPriv.PublicKey}} {
		jwk, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: k.kid, ALG: k.alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	body, err := store.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(srv.Close)

	mint := func(m jwt.SigningMethod, kid string, key any) string {
		tok := jwt.NewWithClaims(m, sdk.Claims{SessionID: "s", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: srv.URL, Subject: "u", Audience: jwt.ClaimStrings{"jotguard"}, ID: "j",
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}})
		tok.Header["typ"], tok.Header["kid"] = sdk.TokenType, kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ed := mint(jwt.SigningMethodEdDSA, "ed", edPriv)
	rs := mint(jwt.SigningMethodRS256, "rsa", rsaPriv)
	ps := mint(jwt.SigningMethodPS256, "rsa", rsaPriv) // same key, alg not allowed
	edAsRSA := mint(jwt.SigningMethodEdDSA, "rsa", edPriv)

	newVerifier := func(algs ...string) *sdk.Verifier {
		v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: srv.URL, Audience: []string{"jotguard"},
			JWKSURL: srv.URL, Algorithms: algs})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	all, esOnly := newVerifier(), newVerifier("ES256")
	tests := []struct {
		name    string
		v       *sdk.Verifier
		token   string
		wantErr error
	}{
		{"EdDSA", all, ed, nil},
		{"RS256", all, rs, nil},
		{"PS256 is not a default", all, ps, sdk.ErrUnsupportedAlg},
		{"EdDSA with the RSA key's kid", all, edAsRSA, sdk.ErrUnknownKey},
		{"EdDSA when only ES256 is allowed", esOnly, ed, sdk.ErrUnsupportedAlg},
		{"RS256 when only ES256 is allowed", esOnly, rs, sdk.ErrUnsupportedAlg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.v.Verify(t.Context(), tt.token); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
