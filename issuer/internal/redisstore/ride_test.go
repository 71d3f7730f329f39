package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
)

// The refresh limit rides in the rotation's first round trip: a refresh is
// two round trips, the budget is spent once per refresh, a refusal leaves
// the session as it was, and a request that never reaches the rotation
// still spends its unit.
func TestRefreshLimitRidesInTheRotation(t *testing.T) {
	rdb, err := redisstore.NewClient(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := testPrefix(t, rdb)
	limits, err := ratelimit.ParseLimits("refresh=3/1m")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: prefix, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix, RefreshTTL: time.Hour, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tok := auth.NewRefreshToken()
	if err := s.Create(ctx, auth.Session{ID: "s1", UserID: "u1", ClientID: "web", CreatedAt: time.Now()}, tok); err != nil {
		t.Fatal(err)
	}
	key := ratelimit.ByNetwork(ratelimit.Refresh, "198.51.100.7")
	rotate := func() (auth.Rotation, ratelimit.Decision, error, error) {
		rctx, decided := l.AllowInRotation(ctx, key)
		rot, err := s.Rotate(rctx, tok, auth.NextRefreshToken(tok))
		d, derr := decided(rctx)
		return rot, d, err, derr
	}
	var trips roundTrips
	rdb.AddHook(&trips)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil { // the first ride pays one EVAL more, once
		t.Fatal(err)
	}
	var got []int32
	for i := range 3 {
		trips.n.Store(0)
		rot, d, err, derr := rotate()
		if err != nil || derr != nil || !d.Allowed || d.Remaining != 2-i || rot.GraceRetry {
			t.Fatalf("refresh %d of 3: %+v, decision %+v, %v, %v", i+1, rot, d, err, derr)
		}
		tok = rot.Token
		got = append(got, trips.n.Load())
	}
	// The first: the pipeline, the EVAL of the flushed limit script, the
	// EVAL of the flushed rotate script; then two round trips each.
	if got[1] != 2 || got[2] != 2 {
		t.Fatalf("round trips per refresh: %v, want 2 once the scripts are loaded", got)
	}

	trips.n.Store(0)
	rot, d, err, derr := rotate()
	var rle *auth.RateLimitError
	if !errors.As(err, &rle) || rle.RetryAfter <= 0 || derr != nil || d.Allowed || rot.Token != "" {
		t.Fatalf("4th refresh: %+v, decision %+v, %v, %v; want refused with a retry time", rot, d, err, derr)
	}
	if n := trips.n.Load(); n != 1 {
		t.Fatalf("a refused refresh made %d round trips, want 1 (the rotate script never ran)", n)
	}
	// The refused refresh touched nothing: the token is still current.
	if sess, err := s.Lookup(ctx, tok); err != nil || sess.ID != "s1" {
		t.Fatalf("Lookup after the refusal: %+v, %v", sess, err)
	}

	// Nothing rode (a token that never reached Redis): decided spends the unit.
	other := ratelimit.ByNetwork(ratelimit.Refresh, "198.51.100.8")
	for i := range 4 {
		rctx, decided := l.AllowInRotation(ctx, other)
		if _, err := s.Rotate(rctx, "not-a-token", auth.NextRefreshToken(auth.NewRefreshToken())); !errors.Is(err, auth.ErrInvalidRefreshToken) {
			t.Fatalf("Rotate of a malformed token: %v", err)
		}
		if d, err := decided(rctx); err != nil || d.Allowed != (i < 3) {
			t.Fatalf("request %d without a rotation: %+v, %v", i+1, d, err)
		}
	}
}
