package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

// fakeLimiter records the keys it is asked about and refuses those of
// the class named in refuse.
type fakeLimiter struct {
	mu     sync.Mutex
	keys   []string
	refuse ratelimit.Class
}

func (f *fakeLimiter) Allow(_ context.Context, k ratelimit.Key) (ratelimit.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, k.String())
	if k.Class() == f.refuse {
		return ratelimit.Decision{RetryAfter: 2300 * time.Millisecond}, nil
	}
	return ratelimit.Decision{Allowed: true}, nil
}

// Each credential endpoint asks the limiter about the client's network
// (X-Forwarded-For only from a trusted proxy; an IPv6 client's /64), before
// any work, and a refusal is a 429 with Retry-After in whole seconds,
// rounded up.
func TestLimitedEndpoints(t *testing.T) {
	svc := newTestService(t, memstore.NewUsers(), signerFunc(func() (string, error) { return "t", nil }))
	_, proxy, _ := net.ParseCIDR("192.0.2.1/32")
	for _, tt := range []struct {
		path, contentType, body string
		class                   ratelimit.Class
	}{
		{"/login", "application/json", `{"email":"a@example.com","password":"x"}`, ratelimit.Credentials},
		{"/register", "application/json", `{"email":"a@example.com","password":"long enough password"}`, ratelimit.Credentials},
		{"/access_token", "application/json", `{"refresh_token":"x"}`, ratelimit.Refresh},
		{"/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b", ratelimit.Credentials},
		{"/oauth/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=x", ratelimit.Refresh},
		{"/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", ratelimit.Credentials},
	} {
		t.Run(tt.path+" "+tt.body[:10], func(t *testing.T) {
			lim := &fakeLimiter{refuse: tt.class}
			api := New(Options{Service: svc, Issuer: "http://issuer.test", Limiter: lim, TrustedProxies: []*net.IPNet{proxy}})
			for _, c := range []struct{ remote, xff, network string }{
				{"192.0.2.1:5000", "2001:db8:1:2::7", "2001:db8:1:2::/64"}, // a trusted proxy's client
				{"198.51.100.9:5000", "2001:db8:1:2::7", "198.51.100.9"},   // an untrusted X-Forwarded-For
			} {
				req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
				req.Header.Set("Content-Type", tt.contentType)
				req.Header.Set("X-Forwarded-For", c.xff)
				req.RemoteAddr = c.remote
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, req)
				if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" || !strings.Contains(rec.Body.String(), `"code":"rate_limited"`) {
					t.Fatalf("refused by the limiter: %d %s, Retry-After %q; want 429 rate_limited, Retry-After 3", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
				}
				if want := string(tt.class) + ":" + c.network; lim.keys[len(lim.keys)-1] != want {
					t.Fatalf("asked about %v, want %s", lim.keys, want)
				}
			}
		})
	}
}
