package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkSignRotateCeiling is the ceiling deploy/bench holds POST
// /access_token to: what a refresh costs the issuer beyond HTTP, cookies and
// JSON. One op is this package's Sessions.Rotate on the worker's own session
// chain (its two round trips: the route's GETEX, then the rotate script) and
// an ES256 sign of an access token whose sdk.Claims come from the rotated
// session's user snapshot, as auth.Service builds them. The session store and its client
// are built as the issuer builds them (NewClient, one Sessions shared by
// every worker).
//
// JOTGUARD_BENCH_CONCURRENCY workers (default 64, the bench's concurrency)
// run closed loops; ns/op is wall time per op over all of them, so 1e9 ÷
// ns/op is the ceiling in refreshes per second. "cpu-ns/op" is the CPU
// time (user and system) of this process per op, "redis-cpu-ns/op" that of
// the Redis servers (INFO cpu, every master of a Cluster; 10 µs ticks);
// "errors" counts failed ops of the last run. It runs on the Redis at JOTGUARD_REDIS_URL
// under a prefix of its own, whose keys it deletes at the end.
//
//	cd issuer && JOTGUARD_REDIS_URL=redis://… go test -run '^$' \
//	    -bench '^BenchmarkSignRotateCeiling$' -benchtime 2s ./internal/redisstore
func BenchmarkSignRotateCeiling(b *testing.B) {
	conc, err := benchConcurrency(os.Getenv("JOTGUARD_BENCH_CONCURRENCY"))
	if err != nil {
		b.Fatal(err)
	}
	rdb, err := redisstore.NewClient(sdktest.RequireEnv(b, "JOTGUARD_REDIS_URL"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	s, err := redisstore.New(rdb, redisstore.Config{Prefix: ceilingPrefix(b, rdb),
		RefreshTTL: 672 * time.Hour, Grace: 10 * time.Second}) // the issuer's defaults
	if err != nil {
		b.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	chains, err := newChains(b.Context(), s, key, conc)
	if err != nil {
		b.Fatal(err)
	}
	// Warm-up, not measured: loads the script and fills the client's pool.
	if n, first := refreshAll(b.Context(), chains, 2*conc); n > 0 {
		b.Fatalf("warm-up: %d refreshes failed, first: %v", n, first)
	}
	b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
		cpu0, redis0 := processCPU(), redisCPU(b.Context(), rdb)
		n, first := refreshAll(b.Context(), chains, b.N)
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		if redis0 >= 0 {
			b.ReportMetric(float64(redisCPU(b.Context(), rdb)-redis0)/float64(b.N), "redis-cpu-ns/op")
		}
		b.ReportMetric(float64(n), "errors")
		if n > 0 {
			b.Logf("%d of %d refreshes failed, first: %v", n, b.N, first)
		}
	})
}

// processCPU is this process's user and system CPU time so far, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// redisCPU is the CPU time the Redis server (every master of a Cluster) has
// used, in ns, from INFO cpu; -1 when it cannot be read.
func redisCPU(ctx context.Context, rdb redis.UniversalClient) int64 {
	var mu sync.Mutex
	var total int64
	read := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		var ns int64
		for l := range strings.Lines(info) {
			k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return err
				}
				ns += int64(f * 1e9)
			}
		}
		mu.Lock()
		total += ns
		mu.Unlock()
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, read)
	case *redis.Client:
		err = read(ctx, c)
	default:
		return -1
	}
	if err != nil {
		return -1
	}
	return total
}

func benchConcurrency(s string) (int, error) {
	if s == "" {
		return 64, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("JOTGUARD_BENCH_CONCURRENCY=%q: want a positive number", s)
	}
	return n, nil
}

// chain is one worker's session: its current refresh token, which each
// refresh replaces.
type chain struct {
	s     *redisstore.Sessions
	key   *ecdsa.PrivateKey
	token string
}

// newChains stores n sessions, each of its own user with a user snapshot
// (a refresh reads no user store while the snapshot is fresh).
func newChains(ctx context.Context, s *redisstore.Sessions, key *ecdsa.PrivateKey, n int) ([]*chain, error) {
	now := time.Now()
	chains := make([]*chain, n)
	for w := range chains {
		uid := auth.NewID()
		u := auth.User{ID: uid, Email: uid + "@bench.example", Roles: []string{"user"}, CreatedAt: now}
		c := &chain{s: s, key: key, token: auth.NewRefreshToken()}
		sess := auth.Session{ID: auth.NewID(), UserID: uid, ClientID: "jotguard", CreatedAt: now,
			Snapshot: &auth.UserSnapshot{User: u, CheckedAt: now}}
		if err := s.Create(ctx, sess, c.token); err != nil {
			return nil, err
		}
		chains[w] = c
	}
	return chains, nil
}

// refreshAll runs n refreshes over one goroutine per chain, each refreshing
// its own chain in a closed loop, and answers how many failed and the first
// failure.
func refreshAll(ctx context.Context, chains []*chain, n int) (failed int64, first error) {
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	for _, c := range chains {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := c.refresh(ctx); err != nil && errs.Add(1) == 1 {
					first = err // read after wg.Wait
				}
			}
		})
	}
	wg.Wait()
	return errs.Load(), first
}

// refresh is a refresh minus HTTP: rotate the chain's token, then sign the
// access token of the rotated session.
func (c *chain) refresh(ctx context.Context) error {
	rot, err := c.s.Rotate(ctx, c.token, auth.NextRefreshToken(c.token))
	if err != nil {
		return err
	}
	c.token = rot.Token
	snap := rot.Session.Snapshot
	if snap == nil {
		return errors.New("rotate returned no user snapshot")
	}
	now := time.Now()
	claims := sdk.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "http://bench.example", Subject: snap.User.ID,
			Audience: jwt.ClaimStrings{"jotguard"}, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: auth.NewID()},
		ClientID: rot.Session.ClientID, SessionID: rot.Session.ID, Email: snap.User.Email,
		EmailVerified: snap.User.EmailVerified, Roles: snap.User.Roles,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"], t.Header["typ"] = "bench", sdk.TokenType
	_, err = t.SignedString(c.key)
	return err
}

// ceilingPrefix is a fresh key prefix whose keys are deleted when b ends.
func ceilingPrefix(b *testing.B, rdb redis.UniversalClient) string {
	prefix := "benchceil_" + strings.ToLower(rand.Text())
	b.Cleanup(func() {
		ctx := context.Background()
		keys, _ := allKeys(ctx, rdb, prefix) // from every master of a Cluster
		for _, k := range keys {
			rdb.Del(ctx, k)
		}
	})
	return prefix
}
