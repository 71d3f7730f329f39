package sdk_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLogsWhereTold: the sdk logs through Config.Logger when set, and
// through slog.Default otherwise (never both).
func TestLogsWhereTold(t *testing.T) {
	var global, hook syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&global, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	plain, told := sdktest.NewIssuer(t), sdktest.NewIssuer(t)
	plain.SetDown(true)
	told.SetDown(true)
	byDefault := plain.Verifier(t, func(c *sdk.Config) { c.JWKSRefresh = 10 * time.Millisecond })
	byHook := told.Verifier(t, func(c *sdk.Config) {
		c.JWKSRefresh = 10 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&hook, nil))
	})
	for p, t0 := plain.JWKSRequests(), told.JWKSRequests(); plain.JWKSRequests() < p+3 || told.JWKSRequests() < t0+3; {
		time.Sleep(10 * time.Millisecond) // until both have failed a few refreshes
	}
	_, _ = byDefault.Verify(t.Context(), plain.Mint(t, plain.Claims("u")))
	_, _ = byHook.Verify(t.Context(), told.Mint(t, told.Claims("u")))
	g, h := global.String(), hook.String()
	if !strings.Contains(g, "jwks refresh failed") || !strings.Contains(g, plain.URL) || strings.Contains(g, told.URL) {
		t.Fatalf("slog.Default got %q, want the failures of the Verifier without a Logger only", g)
	}
	if !strings.Contains(h, "jwks refresh failed") || !strings.Contains(h, told.URL) || strings.Contains(h, plain.URL) {
		t.Fatalf("Config.Logger got %q, want the failures of its own Verifier only", h)
	}
}
