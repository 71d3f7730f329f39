package sdk_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestNewVerifierRejectsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  sdk.Config
	}{
		{"no issuer", sdk.Config{Audience: []string{"jotguard"}}},
		{"no audience", sdk.Config{Issuer: "http://127.0.0.1:1"}},
		{"empty audience", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{""}}},
		{"HS256", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{"a"}, Algorithms: []string{"HS256"}}},
		{"hs512", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{"a"}, Algorithms: []string{"ES256", "hs512"}}},
		{"none", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{"a"}, Algorithms: []string{"none"}}},
		{"unknown alg", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{"a"}, Algorithms: []string{"XX999"}}},
		{"negative leeway", sdk.Config{Issuer: "http://127.0.0.1:1", Audience: []string{"a"}, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := sdk.NewVerifier(t.Context(), tt.cfg); err == nil {
				t.Fatalf("NewVerifier() = %v, nil; want an error", v)
			}
		})
	}
}

func TestKnownKeysSurviveAnOutage(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := iss.Verifier(t, func(c *sdk.Config) { c.JWKSRefresh = 10 * time.Millisecond })
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v with the JWKS up", err)
	}
	iss.SetDown(true) // refreshes now fail with 503
	for before := iss.JWKSRequests(); iss.JWKSRequests() < before+3; {
		time.Sleep(10 * time.Millisecond) // until a few refreshes have failed
	}
	iss.Close() // and now connections are refused
	tok := iss.Mint(t, iss.Claims("user-1"))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify() with the issuer down = %v, want the cached key to verify", err)
	}
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v with keys cached", err)
	}
	// an unknown kid still returns (its refetch fails) instead of hanging
	if _, err := v.Verify(t.Context(), iss.SignHeader(t, map[string]any{"typ": sdk.TokenType, "kid": "new"},
		iss.Claims("user-1"))); !errors.Is(err, sdk.ErrUnknownKey) {
		t.Fatalf("Verify(unknown kid) = %v, want ErrUnknownKey", err)
	}
}

func TestColdStart(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	iss.SetDown(true)
	v := iss.Verifier(t)
	if err := v.Ready(); !errors.Is(err, sdk.ErrNotReady) {
		t.Fatalf("Ready() = %v before any key, want ErrNotReady", err)
	}
	tok := iss.Mint(t, iss.Claims("user-1"))
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, sdk.ErrNotReady) {
		t.Fatalf("Verify() = %v before any key, want ErrNotReady", err)
	}
	iss.SetDown(false)
	deadline := time.Now().Add(10 * time.Second) // a bound on the test, not a timing assertion
	for v.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the verifier never became ready after the JWKS came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify() once ready = %v", err)
	}
	if age := v.JWKSAge(); age < 0 || age > time.Minute {
		t.Fatalf("JWKSAge() = %v just after a load", age)
	}
}

func TestColdStartUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: connection refused
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: "http://" + addr, Audience: []string{"jotguard"}})
	if err != nil {
		t.Fatalf("NewVerifier() with the issuer unreachable = %v, want a not-ready verifier", err)
	}
	if err := v.Ready(); !errors.Is(err, sdk.ErrNotReady) {
		t.Fatalf("Ready() = %v, want ErrNotReady", err)
	}
}

// TestUnknownKIDWaitIsBounded: a JWKS that hangs must not hold Verify. The
// assertion is that Verify returns at all (the server never answers).
func TestUnknownKIDWaitIsBounded(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	hang := make(chan struct{})
	var slow *httptest.Server
	var calls atomic.Int32
	slow = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // the first load works
			http.Redirect(w, r, iss.JWKSURL(), http.StatusFound)
			return
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	v := iss.Verifier(t, func(c *sdk.Config) {
		c.JWKSURL = slow.URL
		c.UnknownKIDWait = 50 * time.Millisecond
	})
	if err := v.Ready(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		_, err := v.Verify(ctx, iss.SignHeader(t, map[string]any{"typ": sdk.TokenType, "kid": "rotated"}, iss.Claims("u")))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, sdk.ErrUnknownKey) {
			t.Fatalf("Verify() = %v, want ErrUnknownKey", err)
		}
	case <-time.After(30 * time.Second): // far beyond the bound: it hangs
		t.Fatal("Verify with an unknown kid did not return while the JWKS hangs")
	}
}
