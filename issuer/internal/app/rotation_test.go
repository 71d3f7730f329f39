package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
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
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// With JOTGUARD_KEY_ENCRYPTION_KEY set, a signing key written into MongoDB in
// the clear (by someone with write access to the database, who then holds
// its private half) is never used: it stays out of the JWKS and signs
// nothing, even as the newest generation whose not_before has passed.
func TestPlantedPlaintextKeyRefused(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_KEY_RELOAD_EVERY": "100ms",
		"JOTGUARD_KEY_ENCRYPTION_KEY": strings.Repeat("ab", 32)})
	email := s.register(pw)
	kid := plantPlaintextKey(t, s)
	time.Sleep(time.Second) // ten reloads
	if strings.Contains(string(s.jwks()), kid) {
		t.Fatalf("the planted key %s is in the JWKS: %s", kid, s.jwks())
	}
	at, _ := s.login(email, pw)
	if _, tok := s.verify(at); tok.Header["kid"] == kid {
		t.Fatal("a token was signed with the planted key")
	}
}

// plantPlaintextKey stores an ES256 key in the clear as the newest
// generation, active now, the way the issuer stores keys, and returns its kid.
func plantPlaintextKey(t *testing.T, s *issuer) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	kid := "planted-" + strings.ToLower(rand.Text()[:8])
	mc, err := mongo.Connect(options.Client().ApplyURI(s.cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	now := time.Now().UTC()
	_, err = mc.Database(s.cfg.MongoDB).Collection("signing_keys").InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: kid}, {Key: "gen", Value: int64(1000)}, {Key: "alg", Value: "ES256"},
		{Key: "public_key", Value: pub}, {Key: "private_key", Value: pkcs8}, {Key: "encrypted", Value: false},
		{Key: "created_at", Value: now}, {Key: "not_before", Value: now.Add(-time.Minute)},
		{Key: "retire_at", Value: nil}, {Key: "expires_at", Value: nil}})
	if err != nil {
		t.Fatal(err)
	}
	return kid
}
