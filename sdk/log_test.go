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

// TestLogsOnlyThroughTheHook: the sdk never writes to slog.Default (keyfunc's
// defaults would); a Logger in Config gets the JWKS failures.
func TestLogsOnlyThroughTheHook(t *testing.T) {
	var global, hook syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&global, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	iss := sdktest.NewIssuer(t)
	iss.SetDown(true)
	quiet := iss.Verifier(t, func(c *sdk.Config) { c.JWKSRefresh = 10 * time.Millisecond })
	loud := iss.Verifier(t, func(c *sdk.Config) {
		c.JWKSRefresh = 10 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&hook, nil))
	})
	for before := iss.JWKSRequests(); iss.JWKSRequests() < before+6; {
		time.Sleep(10 * time.Millisecond) // until both have failed a few refreshes
	}
	_, _ = quiet.Verify(t.Context(), iss.Mint(t, iss.Claims("u")))
	_, _ = loud.Verify(t.Context(), iss.Mint(t, iss.Claims("u")))
	if g := global.String(); g != "" {
		t.Fatalf("the sdk wrote to slog.Default: %s", g)
	}
	if h := hook.String(); !strings.Contains(h, "jwks refresh failed") {
		t.Fatalf("Config.Logger got %q, want the refresh failures", h)
	}
}
