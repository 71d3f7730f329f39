package redisstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestOnCluster runs the session suite and this package's Redis tests on a
// Redis Cluster of three masters: every script touches the keys of one user,
// which share a hash tag, and the routes, in slots of their own, are plain
// commands.
func TestOnCluster(t *testing.T) {
	testenv.OnRedisCluster(t,
		testenv.Test{Name: "IsACluster", Run: func(t *testing.T) {
			rdb, err := redisstore.NewClient(testenv.RedisURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if _, ok := rdb.(*redis.ClusterClient); !ok {
				t.Fatalf("NewClient(%q) = %T, want a *redis.ClusterClient", testenv.RedisURL(t), rdb)
			}
		}},
		testenv.Test{Name: "Sessions", Run: TestSessions},
		testenv.Test{Name: "NoRawTokenStored", Run: TestNoRawTokenStored},
		testenv.Test{Name: "MemoryPerSessionIsBounded", Run: TestMemoryPerSessionIsBounded},
		testenv.Test{Name: "LegacySessionMovesToAChain", Run: TestLegacySessionMovesToAChain},
		testenv.Test{Name: "RotateRoundTrips", Run: TestRotateRoundTrips},
		testenv.Test{Name: "RefreshLimitRidesInTheRotation", Run: TestRefreshLimitRidesInTheRotation})
}

func TestSessions(t *testing.T) {
	url := testenv.RedisURL(t)
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
	rt := auth.NewRefreshToken()
	next := auth.NextRefreshToken(rt)
	chain, _ := auth.RefreshChain(rt)
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1"}, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, rt, next); err != nil {
		t.Fatal(err)
	}
	keys, err := allKeys(ctx, rdb, prefix)
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
		if strings.Contains(k+dump, string(chain)) || strings.Contains(k+dump, hex.EncodeToString(chain)) {
			t.Fatalf("key or value of %q holds a raw chain id", k)
		}
		if !strings.HasPrefix(k, "{"+prefix+":u1}:") && !strings.HasPrefix(k, prefix+":rc:") {
			t.Fatalf("key %q lacks the user's hash tag", k)
		}
	}
	// Deleting the session leaves nothing behind, routes included.
	if n, err := s.Delete(ctx, "u1", "s1"); n != 1 || err != nil {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if keys, _ := allKeys(ctx, rdb, prefix); len(keys) != 0 {
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

// A session holds the same keys and bytes after 1,000 rotations as after
// 20 (grace records included: a burst keeps at most auth.GraceRecords), and
// its first token still revokes it. The bound is the one docs/operations.md
// states.
func TestMemoryPerSessionIsBounded(t *testing.T) {
	const bound = 3 << 10 // bytes of MEMORY USAGE per session, as docs/operations.md states
	s, rdb, prefix := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Minute})
	requireRedisServer(t, rdb)
	ctx := t.Context()
	u := auth.User{ID: "u1", Email: "ann.example@example.com", Username: "ann", FirstName: "Ann", LastName: "Example",
		EmailVerified: true, Roles: []string{"user"}, CreatedAt: time.Now()}
	tokens := []string{auth.NewRefreshToken()}
	err := s.Create(ctx, auth.Session{ID: auth.NewID(), UserID: "u1", ClientID: "jotguard", CreatedAt: time.Now(),
		Snapshot: &auth.UserSnapshot{User: u, CheckedAt: time.Now()}}, tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	usage := func() (keys int, bytes int64) {
		ks, err := allKeys(ctx, rdb, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			n, err := rdb.MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", k, err)
			}
			bytes += n
		}
		return len(ks), bytes
	}
	rotate := func(to int) {
		for i := len(tokens) - 1; i < to; i++ {
			rot, err := s.Rotate(ctx, tokens[i], auth.NextRefreshToken(tokens[i]))
			if err != nil {
				t.Fatalf("rotation %d: %v", i, err)
			}
			tokens = append(tokens, rot.Token)
		}
	}
	rotate(20)
	keys20, bytes20 := usage()
	rotate(1000)
	keys1000, bytes1000 := usage()
	t.Logf("after 20 rotations: %d keys, %d bytes; after 1000: %d keys, %d bytes", keys20, bytes20, keys1000, bytes1000)
	if keys1000 != keys20 || bytes1000 > bytes20+16 || bytes1000 > bound {
		t.Fatalf("after 20 rotations %d keys, %d bytes; after 1000, %d keys, %d bytes: want the same, at most %d bytes",
			keys20, bytes20, keys1000, bytes1000, bound)
	}
	// The first token, 1,000 rotations and 20 grace records ago, is a reuse.
	if _, err := s.Rotate(ctx, tokens[0], auth.NextRefreshToken(tokens[0])); !errors.Is(err, auth.ErrRefreshReuse) {
		t.Fatalf("first token after 1000 rotations: %v, want ErrRefreshReuse", err)
	}
	if keys, _ := usage(); keys != 0 {
		t.Fatalf("%d keys left after the reuse deleted the session", keys)
	}
}

// A session stored before refresh tokens carried a chain id (the previous
// layout, written here as that version wrote it) keeps working: its token
// refreshes once into a chain, and its earlier token is still a reuse after
// the chain has rotated many times.
func TestLegacySessionMovesToAChain(t *testing.T) {
	s, rdb, prefix := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: 300 * time.Millisecond})
	requireRedisServer(t, rdb) // the legacy grace records end by key expiry
	ctx := t.Context()
	var b [32]byte
	_, _ = rand.Read(b[:])
	legacy := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(legacy))
	h, up := hex.EncodeToString(sum[:]), "{"+prefix+":u1}"
	p := rdb.Pipeline()
	p.Set(ctx, prefix+":rt:"+h, "u1", time.Hour)
	p.HSet(ctx, up+":s:s1", "cid", "web", "created", time.Now().UnixMilli())
	p.HSet(ctx, up+":t:"+h, "sid", "s1", "st", "live")
	p.SAdd(ctx, up+":st:s1", h)
	p.LPush(ctx, up+":sl:s1", h)
	p.SAdd(ctx, up+":ss", "s1")
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup(ctx, legacy); err != nil || got.ID != "s1" {
		t.Fatalf("Lookup(legacy) = %+v, %v", got, err)
	}
	rot, err := s.Rotate(ctx, legacy, auth.NextRefreshToken(legacy))
	if _, chained := auth.RefreshChain(rot.Token); err != nil || rot.GraceRetry || rot.Session.ID != "s1" || !chained {
		t.Fatalf("Rotate(legacy) = %+v, %v; want a successor with a chain", rot, err)
	}
	if again, err := s.Rotate(ctx, legacy, auth.NextRefreshToken(legacy)); err != nil || !again.GraceRetry || again.Token != rot.Token {
		t.Fatalf("grace retry of the legacy token = %+v, %v", again, err)
	}
	cur := rot.Token
	for i := range 20 {
		rot, err := s.Rotate(ctx, cur, auth.NextRefreshToken(cur))
		if err != nil || rot.GraceRetry {
			t.Fatalf("rotation %d = %+v, %v", i, rot, err)
		}
		cur = rot.Token
	}
	time.Sleep(time.Second)
	if rot, err := s.Rotate(ctx, legacy, auth.NextRefreshToken(legacy)); !errors.Is(err, auth.ErrRefreshReuse) || rot.Session.ID != "s1" {
		t.Fatalf("legacy token after 20 rotations of its chain = %+v, %v; want ErrRefreshReuse", rot, err)
	}
	if _, err := s.Rotate(ctx, cur, auth.NextRefreshToken(cur)); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("the chain's current token after the reuse: %v", err)
	}
	if keys, _ := allKeys(ctx, rdb, prefix); len(keys) != 0 {
		t.Fatalf("keys left after the reuse deleted the session: %v", keys)
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

// A rotation is two round trips (GETEX of the chain's route; EVALSHA of
// the script), a grace retry too, however many rotations the session has
// behind it. A flushed script cache costs one EVAL more.
func TestRotateRoundTrips(t *testing.T) {
	s, rdb, _ := newSessions(t, redisstore.Config{RefreshTTL: time.Hour, Grace: time.Minute})
	ctx := t.Context()
	rt := auth.NewRefreshToken()
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1"}, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt)); err != nil { // loads the script
		t.Fatal(err)
	}
	var trips roundTrips
	rdb.AddHook(&trips)
	rot, err := s.Rotate(ctx, rt, auth.NextRefreshToken(rt)) // grace retry
	if err != nil || !rot.GraceRetry {
		t.Fatalf("grace retry = %+v, %v", rot, err)
	}
	got := []int32{trips.n.Load()}
	rt2 := rot.Token
	for range 2 * auth.GraceRecords {
		trips.n.Store(0)
		rot, err := s.Rotate(ctx, rt2, auth.NextRefreshToken(rt2))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, trips.n.Load())
		rt2 = rot.Token
	}
	if fmt.Sprint(got) != "[2 2 2 2 2 2 2 2 2]" {
		t.Fatalf("round trips of a grace retry, then per rotation: %v, want 2 each", got)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	trips.n.Store(0)
	if rot, err := s.Rotate(ctx, rt2, auth.NextRefreshToken(rt2)); err != nil || rot.GraceRetry {
		t.Fatalf("Rotate after SCRIPT FLUSH = %+v, %v", rot, err)
	}
	if n := trips.n.Load(); n != 3 {
		t.Fatalf("Rotate after SCRIPT FLUSH: %d round trips, want 3 (one EVAL more)", n)
	}
}

// requireRedisServer skips t on a Redis that lacks what it needs: MEMORY
// USAGE, and keys that expire on their own (the dev stack's embedded
// miniredis has neither; it runs when redis-server is not on PATH).
func requireRedisServer(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	if err := rdb.MemoryUsage(t.Context(), "jotguard-probe", 0).Err(); err != nil && !errors.Is(err, redis.Nil) {
		if os.Getenv("CI") != "" {
			t.Fatalf("the dev stack's Redis is not redis-server (MEMORY USAGE: %v); CI is set and .ci/run installs redis-server", err)
		}
		t.Skipf("needs redis-server (MEMORY USAGE: %v)", err)
	}
}

// newSessions is a store under a fresh prefix on the dev stack's Redis,
// with its client; the prefix's keys go when the test ends.
func newSessions(t *testing.T, cfg redisstore.Config) (*redisstore.Sessions, redis.UniversalClient, string) {
	t.Helper()
	rdb, err := redisstore.NewClient(testenv.RedisURL(t))
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

// allKeys returns the keys holding prefix, from every primary of a Cluster.
func allKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, "*"+prefix+"*").Result()
	}
	var mu sync.Mutex
	var all []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, "*"+prefix+"*").Result()
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	return all, err
}

// testPrefix is a fresh key prefix whose keys are deleted when t ends.
func testPrefix(t *testing.T, rdb redis.UniversalClient) string {
	prefix := "test_" + strings.ToLower(rand.Text())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := allKeys(ctx, rdb, prefix)
		for _, k := range keys {
			rdb.Del(ctx, k)
		}
	})
	return prefix
}
