package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// Outbox implements auth.Outbox.
type Outbox struct {
	mu         sync.Mutex
	seq        int64
	entries    []auth.OutboxEntry // in queue order
	owner      string             // of the lease
	leaseUntil time.Time
}

var _ auth.Outbox = (*Outbox)(nil)

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox { return &Outbox{} }

// Enqueue implements auth.Outbox.
func (o *Outbox) Enqueue(_ context.Context, entries ...auth.OutboxEntry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range entries {
		o.seq++
		e.ID, e.Attempts, e.Payload, e.Trace = fmt.Sprintf("%020d", o.seq), 0, slices.Clone(e.Payload), maps.Clone(e.Trace)
		if e.CreatedAt.IsZero() {
			e.CreatedAt = time.Now().UTC()
		}
		o.entries = append(o.entries, e)
	}
	return nil
}

// Queued implements auth.Outbox.
func (o *Outbox) Queued(_ context.Context, keys ...string) (map[string]bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]bool{}
	for _, e := range o.entries {
		if slices.Contains(keys, e.Key) {
			out[e.Key] = true
		}
	}
	return out, nil
}

// Batch implements auth.Outbox.
func (o *Outbox) Batch(_ context.Context, limit int) ([]auth.OutboxEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.entries[:min(limit, len(o.entries))])
	for i := range out {
		out[i].Payload, out[i].Trace = slices.Clone(out[i].Payload), maps.Clone(out[i].Trace)
	}
	return out, nil
}

// Delete implements auth.Outbox.
func (o *Outbox) Delete(_ context.Context, ids ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = slices.DeleteFunc(o.entries, func(e auth.OutboxEntry) bool { return slices.Contains(ids, e.ID) })
	return nil
}

// Failed implements auth.Outbox.
func (o *Outbox) Failed(_ context.Context, ids ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.entries {
		if slices.Contains(ids, o.entries[i].ID) {
			o.entries[i].Attempts++
		}
	}
	return nil
}

// Pending implements auth.Outbox.
func (o *Outbox) Pending(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.entries)), nil
}

// Lease implements auth.Outbox.
func (o *Outbox) Lease(_ context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owner != owner && !o.leaseUntil.Before(now) {
		return false, nil
	}
	o.owner, o.leaseUntil = owner, now.Add(ttl)
	return true, nil
}

// Release implements auth.Outbox.
func (o *Outbox) Release(_ context.Context, owner string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owner == owner {
		o.leaseUntil = time.Time{}
	}
	return nil
}
