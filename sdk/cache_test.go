package sdk_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// errChecker says the revocation state is unknown.
type errChecker struct{}

func (errChecker) Revoked(*sdk.Claims) (bool, error) { return false, errors.New("feed stale") }

func TestVerifyCache(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	clk := &clock{t: now}
	revs := revocation.NewSet(6*time.Minute, clk.Now)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Now, c.Revocations, c.CacheSize = clk.Now, revs, sdk.DefaultCacheSize })
	tok := iss.Mint(t, validClaims(iss))

	first, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	first.Subject = "changed by the caller"
	second, err := v.Verify(t.Context(), tok) // a hit
	if err != nil {
		t.Fatal(err)
	}
	if second.Subject != "user-1" {
		t.Fatalf("a caller's change reached the cache: sub %q", second.Subject)
	}

	// a revocation after the token was cached still rejects it
	revs.Add(revocation.Event{ID: "e1", Issuer: iss.URL, Subject: "user-1", SessionID: "sess-1", At: now})
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, sdk.ErrRevoked) {
		t.Fatalf("cached, then revoked: Verify() = %v, want ErrRevoked", err)
	}

	// an unrevoked cached token expires at exp, cache or not
	c := validClaims(iss)
	c.SessionID = "sess-2"
	tok2 := iss.Mint(t, c)
	if _, err := v.Verify(t.Context(), tok2); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Minute) // exp + 1 min: beyond the 30 s leeway
	if _, err := v.Verify(t.Context(), tok2); !errors.Is(err, sdk.ErrExpired) {
		t.Fatalf("cached, then expired: Verify() = %v, want ErrExpired", err)
	}
}

func TestVerifyRevocationUnavailable(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	for _, size := range []int{sdk.DefaultCacheSize, 0} { // with and without cache
		v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations, c.CacheSize = errChecker{}, size })
		tok := iss.Mint(t, iss.Claims("user-1"))
		for range 2 {
			c, err := v.Verify(t.Context(), tok)
			if !errors.Is(err, sdk.ErrRevocationUnavailable) || c != nil {
				t.Fatalf("cache %d: Verify() = %v, %v; want nil, ErrRevocationUnavailable", size, c, err)
			}
		}
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := iss.Verifier(t, func(c *sdk.Config) { c.CacheSize = 64 })
	for i := range 500 {
		c := iss.Claims("user")
		c.ClientID = string(rune('a' + i%26))
		if _, err := v.Verify(t.Context(), iss.Mint(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := sdk.CacheLen(v); n > 64 {
		t.Fatalf("cache holds %d entries, want at most 64", n)
	}
}

// A cache of N holds N tokens, however they hash: N distinct tokens in
// rotation all hit from the second round on.
func TestVerifyCacheHoldsItsSize(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	const size = 2000
	v := iss.Verifier(t, func(c *sdk.Config) { c.CacheSize = size })
	for i := range size {
		c := iss.Claims(fmt.Sprint("user-", i))
		if _, err := v.Verify(t.Context(), iss.Mint(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := sdk.CacheLen(v); n != size {
		t.Fatalf("a cache of %d holds %d of %d distinct tokens", size, n, size)
	}
}
