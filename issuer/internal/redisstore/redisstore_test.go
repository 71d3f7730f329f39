package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/redis/go-redis/v9"
)

func TestSessions(t *testing.T) {
	url := sdktest.RequireEnv(t, "JOTGUARD_REDIS_URL")
	rdb, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("JOTGUARD_REDIS_URL is set but the server is unreachable: %v", err)
	}
	storetest.RunSessionStore(t, func(t *testing.T, grace time.Duration) auth.SessionStore {
		s, err := redisstore.New(rdb, redisstore.Config{Prefix: testPrefix(t, rdb), RefreshTTL: time.Hour, Grace: grace})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Only hashes of refresh tokens reach Redis.
func TestNoRawTokenStored(t *testing.T) {
	s, rdb, prefix := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Minute})
	ctx := t.Context()
	rt, next := auth.NewRefreshToken(), auth.NewRefreshToken()
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1"}, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, rt, next); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*"+prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, rt) || strings.Contains(k, next) {
			t.Fatalf("key %q holds a raw token", k)
		}
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(dump, rt) || strings.Contains(dump, next) {
			t.Fatalf("value of %q holds a raw token", k)
		}
		if !strings.HasPrefix(k, "{"+prefix+":u1}:") && !strings.HasPrefix(k, prefix+":rt:") {
			t.Fatalf("key %q lacks the user's hash tag", k)
		}
	}
	// Deleting the session leaves nothing behind, routes included.
	if n, err := s.Delete(ctx, "u1", "s1"); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if keys, _ := rdb.Keys(ctx, "*"+prefix+"*").Result(); len(keys) != 0 {
		t.Fatalf("keys left after the session was deleted: %v", keys)
	}
}

// A dead Redis is an ErrUnavailable, quickly.
func TestDeadRedisIsUnavailable(t *testing.T) {
	rdb, _ := redisstore.NewClient("redis://127.0.0.1:1/0")
	t.Cleanup(func() { _ = rdb.Close() })
	s, _ := redisstore.New(rdb, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Second})
	if _, err := s.Lookup(t.Context(), auth.NewRefreshToken()); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Lookup on a dead Redis: %v, want ErrUnavailable", err)
	}
}

// A session remembers only its last Keep tokens: memory stays bounded
// however often it is refreshed, reuse of a remembered token still revokes,
// and a forgotten one is merely invalid.
func TestHistoryIsBounded(t *testing.T) {
	s, rdb, prefix := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Millisecond, Keep: 3})
	ctx := t.Context()
	tokens := []string{auth.NewRefreshToken()}
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1"}, tokens[0]); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for i := range 10 {
		next := auth.NewRefreshToken()
		if _, err := s.Rotate(ctx, tokens[i], next); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		tokens = append(tokens, next)
		// Grace records (":g:") live for Grace (1 ms) and may or may not have
		// expired yet: count only the keys that must stay bounded.
		keys, _ := rdb.Keys(ctx, "*"+prefix+"*").Result()
		n := 0
		for _, k := range keys {
			if !strings.Contains(k, ":g:") {
				n++
			}
		}
		counts = append(counts, n)
	}
	if counts[len(counts)-1] != counts[3] {
		t.Fatalf("keys per rotation %v: not bounded", counts)
	}
	time.Sleep(20 * time.Millisecond) // past the grace window
	if _, err := s.Rotate(ctx, tokens[0], auth.NewRefreshToken()); !errors.Is(err, auth.ErrInvalidRefreshToken) || errors.Is(err, auth.ErrRefreshReuse) {
		t.Fatalf("forgotten token: %v, want plain ErrInvalidRefreshToken", err)
	}
	if _, err := s.Get(ctx, "u1", "s1"); err != nil {
		t.Fatalf("session after a forgotten token: %v", err)
	}
	if _, err := s.Rotate(ctx, tokens[9], auth.NewRefreshToken()); !errors.Is(err, auth.ErrRefreshReuse) {
		t.Fatalf("remembered token reused: %v, want ErrRefreshReuse", err)
	}
}

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ n atomic.Int32 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// A rotation is two round trips (GET the route; DEL of the routes of
// tokens forgotten by earlier rotations, SET of the successor's route and
// EVALSHA of the script, pipelined), also once the session forgets a token
// on each rotation. A flushed script cache costs one EVAL more.
func TestRotateRoundTrips(t *testing.T) {
	s, rdb, _ := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Minute, Keep: 3})
	ctx := t.Context()
	rt := auth.NewRefreshToken()
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1"}, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, rt, auth.NewRefreshToken()); err != nil { // loads the script
		t.Fatal(err)
	}
	rot, err := s.Rotate(ctx, rt, auth.NewRefreshToken()) // grace retry
	if err != nil || !rot.GraceRetry {
		t.Fatalf("grace retry = %+v, %v", rot, err)
	}
	rt2 := rot.Token
	var trips roundTrips
	rdb.AddHook(&trips)
	var got []int32
	for range 4 {
		next := auth.NewRefreshToken()
		trips.n.Store(0)
		if _, err := s.Rotate(ctx, rt2, next); err != nil {
			t.Fatal(err)
		}
		got = append(got, trips.n.Load())
		rt2 = next
	}
	if fmt.Sprint(got) != "[2 2 2 2]" {
		t.Fatalf("round trips per rotation %v, want [2 2 2 2] (history of 3 fills up)", got)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	trips.n.Store(0)
	if rot, err := s.Rotate(ctx, rt2, auth.NewRefreshToken()); err != nil || rot.GraceRetry {
		t.Fatalf("Rotate after SCRIPT FLUSH = %+v, %v", rot, err)
	}
	if n := trips.n.Load(); n != 3 {
		t.Fatalf("Rotate after SCRIPT FLUSH: %d round trips, want 3 (one EVAL more)", n)
	}
}

// newSessions is a store under a fresh prefix on the dev stack's Redis,
// with its client; the prefix's keys go when the test ends.
func newSessions(t *testing.T, cfg redisstore.Config) (*redisstore.Sessions, redis.UniversalClient, string) {
	t.Helper()
	rdb, err := redisstore.NewClient(sdktest.RequireEnv(t, "JOTGUARD_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	cfg.Prefix = testPrefix(t, rdb)
	s, err := redisstore.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb, cfg.Prefix
}

// testPrefix is a fresh key prefix whose keys are deleted when t ends.
func testPrefix(t *testing.T, rdb redis.UniversalClient) string {
	prefix := "test_" + strings.ToLower(rand.Text())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "*"+prefix+"*").Result()
		for _, k := range keys {
			rdb.Del(ctx, k)
		}
	})
	return prefix
}
