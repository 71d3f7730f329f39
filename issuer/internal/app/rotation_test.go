package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/app"
	"github.com/jotguard/jotguard/sdk"
)

// A key rotation (through `issuer keys rotate`) while tokens are minted and
// verified never fails a verification: a verifier holding the JWKS fetched
// before the rotation, refetching once on an unknown kid, accepts every token.
func TestKeyRotationWhileVerifying(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_JWKS_PUBLISH_AHEAD": "1s", "JOTGUARD_KEY_RELOAD_EVERY": "100ms"})
	email := s.register(pw)
	kf := s.keyfunc()
	verify := func(tok string) (string, error) {
		var c sdk.Claims
		parse := func(kf keyfunc.Keyfunc) (*jwt.Token, error) {
			return jwt.ParseWithClaims(tok, &c, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}),
				jwt.WithIssuer(testIssuer), jwt.WithAudience("jotguard"))
		}
		t0, err := parse(kf)
		if errors.Is(err, jwt.ErrTokenUnverifiable) { // unknown kid: refetch once
			kf = s.keyfunc()
			t0, err = parse(kf)
		}
		if err != nil {
			return "", err
		}
		return t0.Header["kid"].(string), nil
	}
	at, _ := s.login(email, pw)
	first, err := verify(at)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := app.Keys(context.Background(), s.cfg, log, "rotate", &out); err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	kids := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(kids) < 2 || !kids[first] {
		at, _ := s.login(email, pw)
		kid, err := verify(at)
		if err != nil {
			t.Fatalf("a token minted during rotation failed verification: %v", err)
		}
		kids[kid] = true
		if time.Now().After(deadline) {
			t.Fatalf("the new key never signed: kids %v", kids)
		}
		if len(kids) < 2 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The token signed by the old key still verifies after the switch.
	if _, err := verify(at); err != nil {
		t.Fatalf("old-key token after rotation: %v", err)
	}
	out.Reset()
	if err := app.Keys(context.Background(), s.cfg, log, "list", &out); err != nil {
		t.Fatal(err)
	}
	for kid := range kids {
		if !strings.Contains(out.String(), kid) {
			t.Fatalf("keys list lacks %s:\n%s", kid, out.String())
		}
	}
}
