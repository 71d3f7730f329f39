package sdk_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// TestDiscovery: with Discover set, the JWKS comes from the jwks_uri the
// issuer's metadata names (here not the default path), a metadata document
// naming another issuer is refused, and an unreachable issuer falls back to
// the default path instead of failing the start.
func TestDiscovery(t *testing.T) {
	keys := sdktest.NewIssuer(t) // serves the JWKS the metadata points at
	var issuerURL string
	var namedIssuer *string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": *namedIssuer, "jwks_uri": keys.JWKSURL()})
	})
	srv := httptest.NewServer(mux) // no JWKS at the default path
	defer srv.Close()
	issuerURL = srv.URL

	good := issuerURL
	namedIssuer = &good
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: issuerURL, Audience: []string{sdktest.Audience}, Discover: true})
	if err != nil {
		t.Fatalf("NewVerifier with discovery: %v", err)
	}
	c := keys.Claims("user-1")
	c.Issuer = issuerURL
	if _, err := v.Verify(t.Context(), keys.Mint(t, c)); err != nil {
		t.Fatalf("a token signed by the discovered JWKS's key: %v", err)
	}

	other := "https://evil.example"
	namedIssuer = &other
	if _, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: issuerURL, Audience: []string{sdktest.Audience}, Discover: true}); err == nil {
		t.Fatal("metadata naming another issuer: want an error")
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	v, err = sdk.NewVerifier(t.Context(), sdk.Config{Issuer: down.URL, Audience: []string{sdktest.Audience}, Discover: true})
	if err != nil {
		t.Fatalf("unreachable issuer with discovery: %v, want a not-ready verifier", err)
	}
	if v.Ready() == nil {
		t.Fatal("a verifier whose issuer is unreachable reports ready")
	}
}
