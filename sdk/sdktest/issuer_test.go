package sdktest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestIssuerJWKS(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	resp, err := http.Get(iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k["kid"] != iss.KID || k["alg"] != "ES256" || k["use"] != "sig" || k["kty"] != "EC" || k["d"] != "" {
		t.Fatalf("JWK %v: want the public ES256 key %s", k, iss.KID)
	}
	iss.SetDown(true)
	resp2, err := http.Get(iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("SetDown(true): status %d, want 503", resp2.StatusCode)
	}
}

func TestIssuerMintVerifies(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	revs := sdktest.NewRevocations(nil)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	c := iss.Claims("user-1")
	tok := iss.Mint(t, c)
	got, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify(Mint(Claims)) = %v", err)
	}
	if got.Subject != "user-1" || got.SessionID != c.SessionID || got.ID != c.ID {
		t.Fatalf("claims %+v, want those minted", got)
	}
	if !revs.Add(revocation.Event{ID: "e", Issuer: iss.URL, Subject: "user-1", SessionID: c.SessionID, At: c.IssuedAt.Time}) {
		t.Fatal("Add = false")
	}
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, sdk.ErrRevoked) {
		t.Fatalf("after injection: Verify() = %v, want ErrRevoked", err)
	}
}
