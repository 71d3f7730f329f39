// Package audit records the issuer's audit log (auth.Auditor) behind the
// requests: Record puts the entry in a bounded queue and returns, and Run
// writes the queue to the store (auth.AuditLog, in production mongostore's
// audit collection) in batches, one insert per batch.
//
// An audit write never fails or slows the action it records: a logout
// must succeed while MongoDB is down (its event goes to Kafka), and a
// login must not wait for a second database round trip. What that costs:
// an entry can be lost if the process dies within the few milliseconds
// before its batch is written, or if MongoDB stays down until the queue
// (4096 entries by default) is full. A lost entry is never lost silently:
// it is written to the process log, at error level, with every field, and
// counted (Stats.Dropped).
package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Config configures a Recorder.
type Config struct {
	Retention time.Duration // how long an entry is kept; default 90 days
	Queue     int           // entries waiting to be written; default 4096
	Batch     int           // most entries per insert; default 256
	// Linger is how long the writer waits, after the first entry of a
	// batch, for more to join it; default 50ms. Fewer, larger inserts cost
	// MongoDB less per entry than one insert per action.
	Linger time.Duration
	// FlushGrace bounds the last write when Run's context ends; default 5s.
	FlushGrace time.Duration
	Logger     *slog.Logger
}

// Stats are cumulative counters, for metrics.
type Stats struct {
	Recorded uint64 // entries queued
	Written  uint64 // entries the store took
	Dropped  uint64 // entries lost (queue full, or not written at shutdown): in the process log
	Failures uint64 // failed writes (each retried)
}

// Recorder is the auth.Auditor of the issuer.
type Recorder struct {
	store auth.AuditLog
	cfg   Config
	log   *slog.Logger
	q     chan auth.AuditEntry

	recorded, written, dropped, failures atomic.Uint64
}

var _ auth.Auditor = (*Recorder)(nil)

// New returns a Recorder over store; Run writes what it records.
func New(store auth.AuditLog, cfg Config) *Recorder {
	if cfg.Retention <= 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 50 * time.Millisecond
	}
	if cfg.FlushGrace <= 0 {
		cfg.FlushGrace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, cfg: cfg, log: cfg.Logger, q: make(chan auth.AuditEntry, cfg.Queue)}
}

// NewID returns an entry id for an entry of time t: the milliseconds since
// the epoch in 12 hex digits, '-' and 10 random characters, so ids sort as
// strings in the order of time.
func NewID(t time.Time) string {
	return fmt.Sprintf("%012x-%s", t.UnixMilli(), strings.ToLower(rand.Text()[:10]))
}

// Record implements auth.Auditor: it sets the entry's ID and ExpiresAt
// and queues it, without waiting; a full queue drops it to the log.
func (r *Recorder) Record(ctx context.Context, e auth.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC().Truncate(time.Millisecond)
	}
	e.ID = NewID(e.Time)
	e.ExpiresAt = e.Time.Add(r.cfg.Retention)
	select {
	case r.q <- e:
		r.recorded.Add(1)
	default:
		r.recorded.Add(1)
		r.lost(ctx, "audit queue full (the store is down or slow): entry only in this log", e)
	}
}

// List implements auth.Auditor: it reads the store.
func (r *Recorder) List(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEntry, error) {
	return r.store.List(ctx, q)
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	return Stats{Recorded: r.recorded.Load(), Written: r.written.Load(), Dropped: r.dropped.Load(),
		Failures: r.failures.Load()}
}

// Queued is the number of entries waiting to be written.
func (r *Recorder) Queued() int { return len(r.q) }

// Run writes queued entries until ctx ends, then writes what is left
// within Config.FlushGrace. A failed write is retried (with backoff up to
// 5 s) while entries keep queuing behind it.
func (r *Recorder) Run(ctx context.Context) error {
	batch := make([]auth.AuditEntry, 0, r.cfg.Batch)
	for {
		select {
		case <-ctx.Done():
			r.drain(ctx)
			return nil
		case e := <-r.q:
			batch = r.linger(ctx, append(batch[:0], e))
		}
		for wait := 50 * time.Millisecond; !r.write(ctx, batch); wait = min(2*wait, 5*time.Second) {
			select {
			case <-ctx.Done():
				r.drain(ctx, batch...)
				return nil
			case <-time.After(wait):
			}
		}
	}
}

// linger adds to batch what is queued within Config.Linger, up to
// Config.Batch.
func (r *Recorder) linger(ctx context.Context, batch []auth.AuditEntry) []auth.AuditEntry {
	t := time.NewTimer(r.cfg.Linger)
	defer t.Stop()
	for len(batch) < r.cfg.Batch {
		select {
		case e := <-r.q:
			batch = append(batch, e)
		case <-t.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// fill adds what is queued to batch, up to Config.Batch.
func (r *Recorder) fill(batch []auth.AuditEntry) []auth.AuditEntry {
	for len(batch) < r.cfg.Batch {
		select {
		case e := <-r.q:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// write stores batch and reports whether the store took it.
func (r *Recorder) write(ctx context.Context, batch []auth.AuditEntry) bool {
	if err := r.store.Append(ctx, batch...); err != nil {
		if ctx.Err() == nil {
			r.failures.Add(1)
			r.log.WarnContext(ctx, "audit entries not written yet; retrying", "entries", len(batch), "err", err)
		}
		return false
	}
	r.written.Add(uint64(len(batch)))
	return true
}

// drain writes pending (a batch whose write failed) and what is queued,
// within the flush grace; what the store does not take goes to the log.
func (r *Recorder) drain(ctx context.Context, pending ...auth.AuditEntry) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FlushGrace)
	defer cancel()
	for {
		batch := r.fill(pending)
		pending = nil
		if len(batch) == 0 {
			return
		}
		if fctx.Err() != nil || !r.write(fctx, batch) {
			for _, e := range batch {
				r.lost(ctx, "audit entry not written before shutdown: entry only in this log", e)
			}
		}
	}
}

// lost logs an entry that the store will not get, with every field.
func (r *Recorder) lost(ctx context.Context, msg string, e auth.AuditEntry) {
	r.dropped.Add(1)
	r.log.ErrorContext(ctx, msg, "audit_id", e.ID, "audit_time", e.Time, "audit_type", e.Type, "actor", e.Actor,
		"target", e.Target, "ip", e.IP, "user_agent", e.UserAgent, "audit_request_id", e.RequestID, "detail", e.Detail)
}

// Flush waits until every entry recorded before the call is written or
// dropped, or ctx ends: for tests and for commands that exit after one
// action.
func (r *Recorder) Flush(ctx context.Context) error {
	target := r.recorded.Load()
	for r.written.Load()+r.dropped.Load() < target {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
