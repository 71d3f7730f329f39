package ratelimit_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestOnCluster runs this package's Redis tests on a Redis Cluster of three
// masters: every decision touches one key. (A refresh's decision riding in
// the rotation's pipeline is redisstore's TestRefreshLimitRidesInTheRotation.)
func TestOnCluster(t *testing.T) {
	testenv.OnRedisCluster(t,
		testenv.Test{Name: "AllowIsSharedByReplicas", Run: TestAllowIsSharedByReplicas},
		testenv.Test{Name: "KeysExpire", Run: TestKeysExpire},
		testenv.Test{Name: "PasswordAttempt", Run: TestPasswordAttempt})
}

// redisClient connects to the Redis of testenv.RedisURL (a Cluster when it is a
// comma list, as the issuer reads it); its keys under prefix go when t
// ends.
func redisClient(t *testing.T, prefix string) redis.UniversalClient {
	t.Helper()
	rdb, err := redisstore.NewClient(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("JOTGUARD_REDIS_URL is set but Redis is unreachable: %v", err)
	}
	t.Cleanup(func() {
		for _, k := range allKeys(t, rdb, "*"+prefix+"*") {
			rdb.Del(context.Background(), k)
		}
		_ = rdb.Close()
	})
	return rdb
}

// allKeys returns the keys matching pattern, from every primary of a
// Cluster.
func allKeys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	ctx := context.Background()
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Errorf("KEYS %s: %v", pattern, err)
		}
		return keys
	}
	var mu sync.Mutex
	var all []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Errorf("KEYS %s: %v", pattern, err)
	}
	return all
}

// newLimiters returns n Limiters, each on its own client (as replicas
// would be), sharing one prefix.
func newLimiters(t *testing.T, n int, spec string) []*ratelimit.Limiter {
	t.Helper()
	limits, err := ratelimit.ParseLimits(spec)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "test_" + strings.ToLower(rand.Text())
	var out []*ratelimit.Limiter
	for range n {
		l, err := ratelimit.New(redisClient(t, prefix), ratelimit.Config{Prefix: prefix, Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// Replicas share a budget; another network has its own.
func TestAllowIsSharedByReplicas(t *testing.T) {
	ls := newLimiters(t, 2, "credentials=3/1m")
	key := ratelimit.ByNetwork(ratelimit.Credentials, "198.51.100.7")
	for i, l := range []*ratelimit.Limiter{ls[0], ls[1], ls[0]} {
		if d, err := l.Allow(t.Context(), key); err != nil || !d.Allowed {
			t.Fatalf("request %d of 3: %+v, %v", i+1, d, err)
		}
	}
	d, err := ls[1].Allow(t.Context(), key)
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Second {
		t.Fatalf("4th request over two replicas (3 a minute): %+v, %v; want refused, retry within 20 s", d, err)
	}
	if !errors.Is(d.Err(), auth.ErrRateLimited) {
		t.Fatalf("Decision.Err() = %v", d.Err())
	}
	if d, err := ls[1].Allow(t.Context(), ratelimit.ByNetwork(ratelimit.Credentials, "198.51.100.8")); err != nil || !d.Allowed {
		t.Fatalf("another network: %+v, %v", d, err)
	}
	// A class that is off allows everything.
	if d, err := ls[0].Allow(t.Context(), ratelimit.ByNetwork(ratelimit.Refresh, "198.51.100.7")); err != nil || !d.Allowed {
		t.Fatalf("refresh (default on): %+v, %v", d, err)
	}
	if _, err := ls[0].Allow(t.Context(), ratelimit.Key{}); err == nil {
		t.Fatal("a zero Key was allowed")
	}
}

// Every key the limiter writes is short and expires within its window.
func TestKeysExpire(t *testing.T) {
	ls := newLimiters(t, 1, "credentials=60/1m,account=30/15m,account-network=5/15m")
	l := ls[0]
	long := strings.Repeat("y", 60<<10)
	_, _ = l.Allow(t.Context(), ratelimit.ByNetwork(ratelimit.Credentials, "2001:db8::1"))
	_, _ = l.Allow(t.Context(), ratelimit.ByName(ratelimit.Revoke, long))
	done, err := l.PasswordAttempt(t.Context(), "i:"+long, "2001:db8::/64")
	if err != nil {
		t.Fatal(err)
	}
	done(auth.AttemptFailed)
	done, err = l.PasswordAttempt(t.Context(), "u:someone", "198.51.100.7")
	if err != nil {
		t.Fatal(err)
	}
	done(auth.AttemptMatched)

	rdb := redisClient(t, "unused")
	var n int
	for _, k := range keysOf(t, rdb, l) {
		n++
		ttl := rdb.PTTL(t.Context(), k).Val()
		max := 15 * time.Minute
		if strings.Contains(k, ":trust:") {
			max = ratelimit.TrustFor
		}
		if len(k) > 100 || strings.Contains(k, "yyy") || ttl <= 0 || ttl > max {
			t.Errorf("key %.100q: TTL %v (want 0 < TTL ≤ %v)", k, ttl, max)
		}
	}
	if n < 4 {
		t.Fatalf("%d keys; want the network, the revocation, the account and the trust keys at least", n)
	}
}

func keysOf(t *testing.T, rdb redis.UniversalClient, l *ratelimit.Limiter) []string {
	t.Helper()
	// The prefix is the Limiter's: find it from a key it writes.
	probe := ratelimit.ByNetwork(ratelimit.Credentials, "192.0.2.255")
	if _, err := l.Allow(t.Context(), probe); err != nil {
		t.Fatal(err)
	}
	ks := allKeys(t, rdb, "*:rl:credentials:192.0.2.255")
	if len(ks) != 1 {
		t.Fatalf("probe key: %v", ks)
	}
	prefix := strings.TrimSuffix(strings.TrimPrefix(ks[0], "rate:"), ":rl:credentials:192.0.2.255")
	return allKeys(t, rdb, "*"+prefix+":rl:*")
}

// attempt runs one password attempt with the given outcome; it reports
// whether the throttle let it be checked.
func attempt(t *testing.T, l *ratelimit.Limiter, account, network string, outcome auth.Attempt) bool {
	t.Helper()
	done, err := l.PasswordAttempt(t.Context(), account, network)
	var rle *auth.RateLimitError
	switch {
	case errors.As(err, &rle):
		if rle.RetryAfter <= 0 {
			t.Fatalf("refused with RetryAfter %v", rle.RetryAfter)
		}
		return false
	case err != nil:
		t.Fatal(err)
	}
	done(outcome)
	return true
}

// The account slow-down: failures spend a network's budget and the
// account's; matches spend nothing and forgive; the owner keeps a way in.
func TestPasswordAttempt(t *testing.T) {
	const acct = "u:ann"
	t.Run("a network is slowed down by its own failures only", func(t *testing.T) {
		l := newLimiters(t, 1, "account=30/15m,account-network=3/15m")[0]
		for i := range 3 {
			if !attempt(t, l, acct, "198.51.100.1", auth.AttemptFailed) {
				t.Fatalf("failure %d of 3 refused", i+1)
			}
		}
		if attempt(t, l, acct, "198.51.100.1", auth.AttemptMatched) {
			t.Fatal("4th attempt from a network that failed 3 times (3/15m) was checked")
		}
		if !attempt(t, l, acct, "198.51.100.2", auth.AttemptMatched) {
			t.Fatal("another network was slowed down by the first one's failures")
		}
		if !attempt(t, l, "u:bob", "198.51.100.1", auth.AttemptFailed) {
			t.Fatal("another account was slowed down from that network")
		}
	})
	t.Run("a match spends nothing and forgives the network", func(t *testing.T) {
		l := newLimiters(t, 1, "account=3/15m,account-network=2/15m")[0]
		for range 10 {
			if !attempt(t, l, acct, "198.51.100.1", auth.AttemptMatched) {
				t.Fatal("a match spent the account's budget")
			}
		}
		for range 5 {
			if !attempt(t, l, acct, "198.51.100.2", auth.AttemptNotChecked) {
				t.Fatal("an attempt that was not checked spent the account's budget")
			}
		}
		l = newLimiters(t, 1, "account=30/15m,account-network=2/15m")[0]
		for i, o := range []auth.Attempt{auth.AttemptFailed, auth.AttemptMatched, auth.AttemptFailed, auth.AttemptFailed} {
			if !attempt(t, l, acct, "198.51.100.3", o) {
				t.Fatalf("attempt %d refused: a match must forgive the network's failures", i+1)
			}
		}
		if attempt(t, l, acct, "198.51.100.3", auth.AttemptMatched) {
			t.Fatal("a third failure in a row (2/15m) did not slow the network down")
		}
	})
	t.Run("the account cap holds across networks and racing replicas", func(t *testing.T) {
		ls := newLimiters(t, 2, "account=12/15m,account-network=5/15m")
		var checked atomic.Int32
		var wg sync.WaitGroup
		for n := range 8 {
			wg.Go(func() {
				for i := range 5 {
					if attempt(t, ls[i%2], acct, fmt.Sprintf("198.51.100.%d", n+1), auth.AttemptFailed) {
						checked.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if c := checked.Load(); c > 12 || c < 8 {
			t.Fatalf("%d of 40 guesses from 8 networks were checked; the account allows 12 in 15 minutes", c)
		}
		t.Logf("%d of 40 racing guesses checked", checked.Load())
	})
	t.Run("the reserve is kept for networks that have not failed", func(t *testing.T) {
		l := newLimiters(t, 1, "account=9/15m,account-network=5/15m")[0] // reserve 3
		var checked int
		for i := range 10 { // two guessing networks
			if attempt(t, l, acct, fmt.Sprintf("198.51.100.%d", i%2+1), auth.AttemptFailed) {
				checked++
			}
		}
		if checked != 6 {
			t.Fatalf("the guessers got %d checks; want 6 (9 minus the reserve of 3)", checked)
		}
		if !attempt(t, l, acct, "203.0.113.9", auth.AttemptMatched) {
			t.Fatal("the owner from a network that never failed was refused while the reserve was untouched")
		}
		// The reserve goes one guess per fresh network; then only trusted ones pass.
		for i := range 3 {
			if !attempt(t, l, acct, fmt.Sprintf("203.0.113.%d", i+20), auth.AttemptFailed) {
				t.Fatalf("fresh network %d refused", i)
			}
		}
		if attempt(t, l, acct, "203.0.113.30", auth.AttemptFailed) {
			t.Fatal("a guess past the cap, from an untrusted network, was checked")
		}
		if !attempt(t, l, acct, "203.0.113.9", auth.AttemptMatched) {
			t.Fatal("the owner's trusted network (its password matched there) was refused past the cap")
		}
	})
}

// When Redis cannot be asked, credential and revocation limits let requests
// through; refreshes, accounts and mail answer ErrUnavailable (503).
func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	defer rdb.Close()
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: "down"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if d, err := l.Allow(ctx, ratelimit.ByNetwork(ratelimit.Credentials, "198.51.100.7")); err != nil || !d.Allowed || !d.Unchecked {
		t.Errorf("credentials with Redis down: %+v, %v; want allowed, unchecked", d, err)
	}
	if err := l.Revocation(ctx, "ann"); err != nil {
		t.Errorf("revocation with Redis down: %v; want allowed", err)
	}
	for _, c := range []ratelimit.Class{ratelimit.Refresh, ratelimit.Mail} {
		if _, err := l.Allow(ctx, ratelimit.ByName(c, "x")); !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v; want ErrUnavailable", c, err)
		}
	}
	if _, err := l.PasswordAttempt(ctx, "u:ann", "198.51.100.7"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("password attempt with Redis down: %v; want ErrUnavailable", err)
	}
}
