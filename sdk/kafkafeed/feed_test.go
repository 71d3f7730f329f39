package kafkafeed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

const replay = 10 * time.Minute

var seq atomic.Int64

// userEvent revokes every session of sub at time at.
func (fx *fixture) userEvent(sub string, at time.Time) revocation.Event {
	return revocation.Event{ID: fmt.Sprintf("evt-%s-%d", sub, seq.Add(1)), Issuer: fx.Issuer,
		Subject: sub, At: at, IssuedAt: at, Reason: revocation.ReasonAdmin, Initiator: "admin"}
}

// revoked asks c whether a token of sub issued 3 hours before now (before
// any event of these tests) is revoked.
func (fx *fixture) revoked(t *testing.T, c sdk.RevocationChecker, sub string, now time.Time) bool {
	t.Helper()
	ok, err := c.Revoked(&sdk.Claims{SessionID: "sess-" + sub, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: fx.Issuer, Subject: sub, ID: "jti-" + sub, IssuedAt: jwt.NewNumericDate(now.Add(-3 * time.Hour))}})
	if err != nil {
		t.Fatalf("Revoked(%s): %v", sub, err)
	}
	return ok
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func newFeed(t *testing.T, cfg kafkafeed.Config) *kafkafeed.Feed {
	t.Helper()
	if cfg.Replay == 0 {
		cfg.Replay = replay
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	f, err := kafkafeed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNewValidatesConfig(t *testing.T) {
	fx := newFixture(t)
	valid := kafkafeed.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Replay: time.Minute,
		Set: fx.NewSet(time.Now)}
	tests := []struct {
		name string
		edit func(*kafkafeed.Config)
		ok   bool
	}{
		{"valid", func(*kafkafeed.Config) {}, true},
		{"no brokers", func(c *kafkafeed.Config) { c.Brokers = nil }, false},
		{"no topic", func(c *kafkafeed.Config) { c.Topic = "" }, false},
		{"no replay", func(c *kafkafeed.Config) { c.Replay = 0 }, false},
		{"no set", func(c *kafkafeed.Config) { c.Set = nil }, false},
		{"negative staleness", func(c *kafkafeed.Config) { c.MaxStaleness = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			f, err := kafkafeed.New(c)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && f.Ready() == nil {
				t.Fatal("a Feed that never ran is ready")
			}
		})
	}
}

// Replay applies what is inside the window and skips what is older, and a
// restarted feed (a new process: a new Set) gets the same state back. Only
// partition 0 holds records: the empty ones count as caught up.
func TestReplayWindowAndRestart(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 3)
	w := newWriter(t, brokers, topic, toPartition(0))
	now := time.Now()
	old := fx.userEvent("old", now.Add(-2*time.Hour))
	recent := fx.userEvent("recent", now.Add(-time.Minute))
	write(t, w, record("old", fx.Sign(t, old), old.At), record("recent", fx.Sign(t, recent), recent.At))

	set := fx.NewSet(time.Now)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: set})
	stop := runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	if err := f.Ready(); err != nil {
		t.Fatalf("Ready() = %v after CaughtUp", err)
	}
	if !fx.revoked(t, f, "recent", now) {
		t.Error("event inside the replay window not applied")
	}
	if fx.revoked(t, f, "old", now) {
		t.Error("event older than the replay window applied")
	}
	st := f.Stats()
	if st.Partitions != 3 || st.Applied != 1 || st.Poison != 0 || !st.CaughtUp {
		t.Errorf("Stats = %+v, want 3 partitions, 1 applied, caught up", st)
	}
	stop()

	after := fx.userEvent("after", time.Now())
	write(t, w, record("after", fx.Sign(t, after), after.At))

	f2 := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f2))
	eventually(t, "restarted feed caught up", f2.CaughtUp)
	for sub, want := range map[string]bool{"old": false, "recent": true, "after": true} {
		if got := fx.revoked(t, f2, sub, now); got != want {
			t.Errorf("after restart: Revoked(%s) = %v, want %v", sub, got, want)
		}
	}
	if st := f2.Stats(); st.Applied != 2 || st.Lag != 0 {
		t.Errorf("after restart: Stats = %+v, want 2 applied, no lag", st)
	}
}

// blockingSink holds the first Add until released.
type blockingSink struct {
	kafkafeed.Sink
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingSink) Add(e revocation.Event) bool {
	s.once.Do(func() {
		close(s.started)
		<-s.release
	})
	return s.Sink.Add(e)
}

// Until the backlog present at start has been applied, the feed is not ready
// and, failing closed, answers "unknown".
func TestNotReadyUntilBacklogApplied(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	w := newWriter(t, brokers, topic, nil)
	now := time.Now()
	for _, sub := range []string{"u1", "u2", "u3"} {
		e := fx.userEvent(sub, now)
		write(t, w, record(sub, fx.Sign(t, e), now))
	}
	sink := &blockingSink{Sink: fx.NewSet(time.Now), started: make(chan struct{}), release: make(chan struct{})}
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: sink,
		FailClosed: true})
	if _, err := f.Revoked(&sdk.Claims{}); !errors.Is(err, sdk.ErrRevocationUnavailable) {
		t.Fatalf("before Run: Revoked() error = %v, want ErrRevocationUnavailable", err)
	}
	// Failing open is for a feed that has been unreachable too long, not for
	// one still replaying: a token revoked before the start must not pass.
	open := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	if _, err := open.Revoked(&sdk.Claims{}); !errors.Is(err, sdk.ErrRevocationUnavailable) {
		t.Fatalf("fail-open before catch-up: Revoked() error = %v, want ErrRevocationUnavailable", err)
	}
	runFeed(t, fx.run(f))
	<-sink.started
	if f.CaughtUp() {
		t.Fatal("CaughtUp() = true with 3 records unapplied")
	}
	if err := f.Ready(); !errors.Is(err, kafkafeed.ErrNotCaughtUp) {
		t.Fatalf("Ready() = %v, want ErrNotCaughtUp", err)
	}
	if _, err := f.Revoked(&sdk.Claims{}); !errors.Is(err, sdk.ErrRevocationUnavailable) {
		t.Fatalf("fail-closed before catch-up: Revoked() error = %v, want ErrRevocationUnavailable", err)
	}
	close(sink.release)
	eventually(t, "caught up", f.CaughtUp)
	for _, sub := range []string{"u1", "u2", "u3"} {
		if !fx.revoked(t, f, sub, now) {
			t.Errorf("%s: backlog event not applied when caught up", sub)
		}
	}
}

// Garbage, a forged signature and a foreign issuer are counted and skipped;
// the event after them is applied; a redelivered event is a duplicate.
func TestPoisonRecordsSkipped(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	w := newWriter(t, brokers, topic, nil)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)

	now := time.Now()
	forged := fx.userEvent("forged", now)
	foreign := fx.userEvent("foreign", now)
	foreign.Issuer = "https://evil.test"
	good := fx.userEvent("good", now)
	write(t, w,
		record("garbage", []byte("\x00not a jwt{"), now),
		record("empty", nil, now),
		record("forged", fx.Forge(t, forged), now),
		record("foreign", fx.Sign(t, foreign), now),
		record("good", fx.Sign(t, good), now),
		record("good", fx.Sign(t, good), now), // redelivered
	)
	eventually(t, "all six records read", func() bool { st := f.Stats(); return st.Applied+st.Duplicates+st.Poison == 6 })
	if !fx.revoked(t, f, "good", now) {
		t.Error("the event after the poison records was not applied")
	}
	for _, sub := range []string{"forged", "foreign"} {
		if fx.revoked(t, f, sub, now) {
			t.Errorf("%s: a rejected event was applied", sub)
		}
	}
	if st := f.Stats(); st.Poison != 4 || st.Applied != 1 || st.Duplicates != 1 || st.Entries != 1 {
		t.Errorf("Stats = %+v, want 4 poison, 1 applied, 1 duplicate, 1 entry", st)
	}
}

// A new record reaches the Set within tens of milliseconds. Measured and
// logged, never asserted.
func TestPropagationLatency(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 3)
	w := newWriter(t, brokers, topic, nil)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now),
		Logger: slog.New(slog.DiscardHandler)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)

	var lat []time.Duration
	for i := range 30 {
		sub := fmt.Sprint("lat-", i)
		start := time.Now()
		e := fx.userEvent(sub, start)
		write(t, w, record(sub, fx.Sign(t, e), start))
		acked := time.Since(start)
		eventually(t, sub+" applied", func() bool { return fx.revoked(t, f, sub, start.Add(time.Second)) })
		lat = append(lat, time.Since(start))
		if i == 0 {
			t.Logf("first write acked after %v", acked)
		}
	}
	slices.Sort(lat)
	t.Logf("revocation propagation write→Set over %d events: p50 %v, p90 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
}

// Cancelling Run's context ends it with nil, while fetches are parked.
func TestRunReturnsOnCancel(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 4)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, fx.Trust) }()
	eventually(t, "caught up", f.CaughtUp)
	if err := f.Run(ctx, fx.Trust); err == nil {
		t.Fatal("a second Run of the same Feed returned nil")
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v after cancel, want nil", err)
		}
		t.Logf("Run returned %v after cancel", time.Since(start))
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// A topic that does not exist yet is retried until it does.
func TestTopicCreatedLater(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f))
	if f.CaughtUp() {
		t.Fatal("caught up on a topic that does not exist")
	}
	createTopic(t, brokers, topic, 2)
	now := time.Now()
	e := fx.userEvent("late", now)
	write(t, newWriter(t, brokers, topic, nil), record("late", fx.Sign(t, e), now))
	eventually(t, "event on a late topic applied", func() bool { return f.CaughtUp() && fx.revoked(t, f, "late", now) })
}

// mutableClock is time.Now plus a skew the test can add to.
type mutableClock struct{ skew atomic.Int64 }

func (c *mutableClock) Now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *mutableClock) Advance(d time.Duration) { c.skew.Add(int64(d)) }

// The broker stops mid-stream: a fail-closed feed answers "unknown" once it
// is stale, a fail-open one keeps answering and reports it; after a restart
// on the same port and data, new events arrive and both recover.
func TestBrokerRestartMidStream(t *testing.T) {
	fx := newFixture(t)
	topic := topicName(t)
	b := startBroker(t, topic, 2)
	w := newWriter(t, b.Brokers, topic, nil)
	clock := &mutableClock{}
	mk := func(failClosed bool) *kafkafeed.Feed {
		f := newFeed(t, kafkafeed.Config{Brokers: b.Brokers, Topic: topic,
			Set: fx.NewSet(clock.Now), FailClosed: failClosed, MaxStaleness: 5 * time.Second, Now: clock.Now})
		runFeed(t, fx.run(f))
		return f
	}
	closed, open := mk(true), mk(false)
	eventually(t, "caught up", func() bool { return closed.CaughtUp() && open.CaughtUp() })

	now := clock.Now()
	before := fx.userEvent("before", now)
	write(t, w, record("before", fx.Sign(t, before), now))
	eventually(t, "first event applied", func() bool { return fx.revoked(t, closed, "before", now) && fx.revoked(t, open, "before", now) })

	b.stop()
	clock.Advance(time.Minute) // past MaxStaleness; no round trip can succeed now
	eventually(t, "stale", func() bool { return closed.Stale() && open.Stale() && closed.Stats().Stale })
	if _, err := closed.Revoked(&sdk.Claims{}); !errors.Is(err, sdk.ErrRevocationUnavailable) {
		t.Fatalf("fail-closed, broker down: Revoked() error = %v, want ErrRevocationUnavailable", err)
	}
	if !fx.revoked(t, open, "before", now) {
		t.Fatal("fail-open, broker down: lost an applied revocation")
	}

	b.start()
	after := fx.userEvent("after", clock.Now())
	write(t, newWriter(t, b.Brokers, topic, nil), record("after", fx.Sign(t, after), after.At))
	eventually(t, "event after the restart applied", func() bool {
		_, err := closed.Revoked(&sdk.Claims{})
		return err == nil && fx.revoked(t, closed, "after", now) && fx.revoked(t, open, "after", now)
	})
	if closed.Stale() || open.Stale() {
		t.Error("still stale after the broker came back")
	}
	t.Logf("stats after restart: closed %+v", closed.Stats())
}

// Partitions added to the topic later are found and read.
func TestPartitionsAddedLater(t *testing.T) {
	t.Cleanup(kafkafeed.SetDiscoverEvery(100 * time.Millisecond))
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)

	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.CreatePartitions(t.Context(), &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 2}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("add a partition: %v %v", err, res)
	}
	now := time.Now()
	e := fx.userEvent("p1", now)
	write(t, newWriter(t, brokers, topic, toPartition(1)), record("p1", fx.Sign(t, e), now))
	eventually(t, "event on the new partition applied", func() bool { return fx.revoked(t, f, "p1", now) })
	if st := f.Stats(); st.Partitions != 2 || !st.CaughtUp {
		t.Errorf("Stats = %+v, want 2 partitions, caught up", st)
	}
}

// A broker that comes back without its data (a dev stack restarted without
// --data, a topic recreated) leaves the feed ahead of the log: it must seek
// again instead of waiting at an offset that no longer exists.
func TestBrokerLostData(t *testing.T) {
	fx := newFixture(t)
	topic := topicName(t)
	b := startBroker(t, topic, 1)
	f := newFeed(t, kafkafeed.Config{Brokers: b.Brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	now := time.Now()
	w := newWriter(t, b.Brokers, topic, nil)
	for _, sub := range []string{"a", "b", "c"} {
		e := fx.userEvent(sub, now)
		write(t, w, record(sub, fx.Sign(t, e), now))
	}
	eventually(t, "first events applied", func() bool { return f.Stats().Applied == 3 })

	b.stop()
	b.dir = t.TempDir() // the data is gone
	b.start()
	e := fx.userEvent("fresh", time.Now())
	write(t, newWriter(t, b.Brokers, topic, nil), record("fresh", fx.Sign(t, e), e.At))
	eventually(t, "event on the emptied log applied", func() bool { return fx.revoked(t, f, "fresh", now) })
}

// A burst of forged events (unknown kid: each may trigger a JWKS refetch)
// delays the good event behind them only briefly. Measured, not asserted.
func TestForgedBurstThenGoodEvent(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now),
		Logger: slog.New(slog.DiscardHandler)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	now := time.Now()
	var msgs []kafka.Message
	for i := range 20 {
		sub := fmt.Sprint("forged-", i)
		msgs = append(msgs, record(sub, fx.Forge(t, fx.userEvent(sub, now)), now))
	}
	good := fx.userEvent("good", now)
	msgs = append(msgs, record("good", fx.Sign(t, good), now))
	start := time.Now()
	write(t, newWriter(t, brokers, topic, nil), msgs...)
	eventually(t, "good event after 20 forged ones applied", func() bool { return fx.revoked(t, f, "good", now) })
	t.Logf("good event applied %v after a burst of 20 forged ones", time.Since(start))
	if st := f.Stats(); st.Poison != 20 {
		t.Errorf("Poison = %d, want 20", st.Poison)
	}
}
