package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/audit"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
)

// flaky is an AuditLog that fails while down, and counts inserts.
type flaky struct {
	*memstore.AuditLog
	mu      sync.Mutex
	down    bool
	inserts int
	block   chan struct{} // when set, Append waits for it
}

func (f *flaky) Append(ctx context.Context, es ...auth.AuditEntry) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("down: %w", auth.ErrUnavailable)
	}
	f.inserts++
	return f.AuditLog.Append(ctx, es...)
}

func (f *flaky) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func entry(i int) auth.AuditEntry {
	return auth.AuditEntry{Time: time.Now().UTC().Truncate(time.Millisecond), Type: auth.AuditLogout,
		Actor: fmt.Sprint("u", i), Target: fmt.Sprint("u", i)}
}

func run(t *testing.T, r *audit.Recorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// Entries are written in batches, newest first when listed, each with an
// id that sorts by time and an expiry of Time + retention.
func TestRecordWritesInBatches(t *testing.T) {
	store := &flaky{AuditLog: memstore.NewAuditLog()}
	r := audit.New(store, audit.Config{Retention: time.Hour})
	for i := range 100 {
		r.Record(t.Context(), entry(i)) // queued before Run: one batch
	}
	run(t, r)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := r.List(t.Context(), auth.AuditQuery{Limit: 1000})
	if err != nil || len(got) != 100 {
		t.Fatalf("List: %d entries, %v", len(got), err)
	}
	if store.inserts != 1 {
		t.Errorf("%d inserts for 100 entries queued at once, want 1", store.inserts)
	}
	for i, e := range got {
		if e.ID == "" || !e.ExpiresAt.Equal(e.Time.Add(time.Hour)) || (i > 0 && e.ID >= got[i-1].ID) {
			t.Fatalf("entry %d: %+v (previous id %q)", i, e, got[max(i-1, 0)].ID)
		}
	}
	if s := r.Stats(); s.Recorded != 100 || s.Written != 100 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A store that is down holds nothing up: Record returns at once, the
// batch is retried until the store is back, and nothing is lost.
func TestStoreDownIsRetried(t *testing.T) {
	store := &flaky{AuditLog: memstore.NewAuditLog(), down: true}
	r := audit.New(store, audit.Config{})
	run(t, r)
	for i := range 10 {
		r.Record(t.Context(), entry(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Failures < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	store.set(false)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Written != 10 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A full queue drops the entry to the process log, with its fields, and
// counts it; so does a shutdown with the store still down.
func TestLostEntriesGoToTheLog(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	store := &flaky{AuditLog: memstore.NewAuditLog(), block: make(chan struct{})}
	r := audit.New(store, audit.Config{Queue: 2, Batch: 1, FlushGrace: 50 * time.Millisecond, Logger: log})
	stop := run(t, r)
	r.Record(t.Context(), entry(1)) // taken by Run, blocked in Append
	deadline := time.Now().Add(10 * time.Second)
	for r.Queued() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not take the first entry")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 2; i <= 4; i++ { // 2 and 3 queue, 4 is dropped
		r.Record(t.Context(), entry(i))
	}
	if s := r.Stats(); s.Dropped != 1 || !strings.Contains(logs.String(), "actor=u4") {
		t.Fatalf("queue full: stats %+v, log %s", r.Stats(), logs.String())
	}
	stop() // the store never answers: 1, 2 and 3 go to the log too
	if s := r.Stats(); s.Dropped != 4 || s.Written != 0 {
		t.Fatalf("after shutdown: stats %+v", s)
	}
	for _, a := range []string{"actor=u1", "actor=u2", "actor=u3", "audit_type=logout"} {
		if !strings.Contains(logs.String(), a) {
			t.Errorf("log lacks %s:\n%s", a, logs.String())
		}
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.List(t.Context(), auth.AuditQuery{Limit: 10}); len(n) != 0 {
		t.Fatalf("%d stored", len(n))
	}
}

// BenchmarkRecord is what an action pays for its audit entry: an id and a
// queue send (the write happens behind it).
func BenchmarkRecord(b *testing.B) {
	r := audit.New(discard{memstore.NewAuditLog()}, audit.Config{Queue: 1 << 20})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(b.Context(), e)
	}
}

// discard is an AuditLog that takes every batch and keeps nothing.
type discard struct{ *memstore.AuditLog }

func (discard) Append(context.Context, ...auth.AuditEntry) error { return nil }
