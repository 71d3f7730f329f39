package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// RunOutbox checks the auth.Outbox contract. newOutbox returns a fresh,
// empty outbox.
func RunOutbox(t *testing.T, newOutbox func(t *testing.T) auth.Outbox) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	entry := func(key, payload string) auth.OutboxEntry {
		return auth.OutboxEntry{Key: key, Payload: []byte(payload), CreatedAt: created}
	}
	enqueue := func(t *testing.T, o auth.Outbox, es ...auth.OutboxEntry) {
		t.Helper()
		if err := o.Enqueue(t.Context(), es...); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	batch := func(t *testing.T, o auth.Outbox, limit int) []auth.OutboxEntry {
		t.Helper()
		es, err := o.Batch(t.Context(), limit)
		if err != nil {
			t.Fatalf("Batch(%d): %v", limit, err)
		}
		if len(es) > limit {
			t.Fatalf("Batch(%d) returned %d entries", limit, len(es))
		}
		for i, e := range es { // the IDs are the queue order
			if e.ID == "" || (i > 0 && e.ID <= es[i-1].ID) {
				t.Fatalf("Batch(%d): entry %d has ID %q after %q; want unique IDs, in queue order", limit, i, e.ID, es[max(i-1, 0)].ID)
			}
		}
		return es
	}
	payloads := func(es []auth.OutboxEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, string(e.Payload))
		}
		return out
	}
	ids := func(es ...auth.OutboxEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	pending := func(t *testing.T, o auth.Outbox, want int64) {
		t.Helper()
		if n, err := o.Pending(t.Context()); err != nil || n != want {
			t.Fatalf("Pending() = %d, %v; want %d", n, err, want)
		}
	}
	queued := func(t *testing.T, o auth.Outbox, keys ...string) []string {
		t.Helper()
		q, err := o.Queued(t.Context(), keys...)
		if err != nil {
			t.Fatalf("Queued: %v", err)
		}
		var out []string
		for _, k := range keys {
			if q[k] {
				out = append(out, k)
			}
		}
		return out
	}

	t.Run("EmptyOutbox", func(t *testing.T) {
		o := newOutbox(t)
		pending(t, o, 0)
		if es := batch(t, o, 10); len(es) != 0 {
			t.Fatalf("Batch of an empty outbox: %+v", es)
		}
		if q := queued(t, o, "a"); len(q) != 0 {
			t.Fatalf("Queued(a) = %v on an empty outbox", q)
		}
	})
	t.Run("QueueOrderAcrossEnqueues", func(t *testing.T) {
		o := newOutbox(t)
		enqueue(t, o, entry("a", "a1"), entry("b", "b1"))
		enqueue(t, o, entry("a", "a2"))
		enqueue(t, o, entry("c", "c1"), entry("a", "a3"), entry("b", "b2"))
		es := batch(t, o, 100)
		if got := payloads(es); fmt.Sprint(got) != "[a1 b1 a2 c1 a3 b2]" {
			t.Fatalf("Batch = %v, want [a1 b1 a2 c1 a3 b2]: the queue order", got)
		}
		for i, e := range es {
			if e.Key != string(e.Payload[0]) || e.Attempts != 0 || !e.CreatedAt.Equal(created) {
				t.Errorf("entry %d = %+v, want key %c, no attempts, created %v", i, e, e.Payload[0], created)
			}
		}
		pending(t, o, 6)
	})
	t.Run("PayloadIsOpaque", func(t *testing.T) {
		o := newOutbox(t)
		bin := []byte{0xff, 0x00, 0xfe, 'x', 0x80}
		jws := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"
		enqueue(t, o, auth.OutboxEntry{Key: "u", Payload: bin}, auth.OutboxEntry{Key: "u", Payload: []byte(jws)})
		es := batch(t, o, 10)
		if len(es) != 2 || !bytes.Equal(es[0].Payload, bin) || string(es[1].Payload) != jws {
			t.Fatalf("payloads read back as %q, want %q and %q", payloads(es), bin, jws)
		}
		if es[0].CreatedAt.IsZero() {
			t.Error("Enqueue left CreatedAt zero")
		}
	})
	t.Run("TraceContextIsKept", func(t *testing.T) {
		o := newOutbox(t)
		tc := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b"}
		enqueue(t, o, auth.OutboxEntry{Key: "u", Payload: []byte("traced"), Trace: maps.Clone(tc)}, entry("u", "untraced"))
		es := batch(t, o, 10)
		if len(es) != 2 || !maps.Equal(es[0].Trace, tc) || len(es[1].Trace) != 0 {
			t.Fatalf("trace contexts read back as %v and %v, want %v and none", es[0].Trace, es[1].Trace, tc)
		}
	})
	t.Run("BatchLimitReadsTheHead", func(t *testing.T) {
		o := newOutbox(t)
		for i := range 5 {
			enqueue(t, o, entry(fmt.Sprint("k", i%2), fmt.Sprint("e", i)))
		}
		first := batch(t, o, 2)
		if got := payloads(first); fmt.Sprint(got) != "[e0 e1]" {
			t.Fatalf("Batch(2) = %v, want [e0 e1]", got)
		}
		if again := batch(t, o, 2); !slices.Equal(ids(again...), ids(first...)) {
			t.Fatalf("Batch(2) again = %v: reading must not consume", payloads(again))
		}
		if err := o.Delete(t.Context(), ids(first...)...); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := payloads(batch(t, o, 2)); fmt.Sprint(got) != "[e2 e3]" {
			t.Fatalf("Batch(2) after deleting the head = %v, want [e2 e3]", got)
		}
		if got := payloads(batch(t, o, 10)); fmt.Sprint(got) != "[e2 e3 e4]" {
			t.Fatalf("Batch(10) = %v, want [e2 e3 e4]", got)
		}
		pending(t, o, 3)
	})
	t.Run("DeleteAndQueued", func(t *testing.T) {
		o := newOutbox(t)
		enqueue(t, o, entry("a", "a1"), entry("b", "b1"), entry("a", "a2"))
		if got := queued(t, o, "a", "b", "c"); fmt.Sprint(got) != "[a b]" {
			t.Fatalf("Queued(a, b, c) = %v, want [a b]", got)
		}
		es := batch(t, o, 10)
		if err := o.Delete(t.Context(), es[1].ID, "no-such-id"); err != nil {
			t.Fatalf("Delete with an unknown id: %v", err)
		}
		if got := queued(t, o, "a", "b"); fmt.Sprint(got) != "[a]" {
			t.Fatalf("Queued(a, b) after deleting b's entry = %v, want [a]", got)
		}
		if got := payloads(batch(t, o, 10)); fmt.Sprint(got) != "[a1 a2]" {
			t.Fatalf("Batch = %v, want [a1 a2]", got)
		}
		pending(t, o, 2)
		if err := o.Delete(t.Context()); err != nil {
			t.Fatalf("Delete of nothing: %v", err)
		}
	})
	t.Run("FailedAttemptsAreCounted", func(t *testing.T) {
		o := newOutbox(t)
		enqueue(t, o, entry("a", "a1"), entry("a", "a2"), entry("b", "b1"))
		es := batch(t, o, 10)
		for _, failed := range [][]string{{es[0].ID, es[1].ID}, {es[0].ID}, {"no-such-id"}} {
			if err := o.Failed(t.Context(), failed...); err != nil {
				t.Fatalf("Failed(%v): %v", failed, err)
			}
		}
		es = batch(t, o, 10)
		var got []int
		for _, e := range es {
			got = append(got, e.Attempts)
		}
		if fmt.Sprint(payloads(es), got) != "[a1 a2 b1] [2 1 0]" {
			t.Fatalf("after failed attempts: %v with attempts %v, want [a1 a2 b1] with [2 1 0], still queued in order", payloads(es), got)
		}
	})
	t.Run("ConcurrentProducersKeepEachKeysOrder", func(t *testing.T) {
		o := newOutbox(t)
		const producers, each = 4, 6
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for i := range each {
					if err := o.Enqueue(t.Context(), entry(fmt.Sprint("user", p), fmt.Sprint(i))); err != nil {
						t.Errorf("Enqueue: %v", err)
					}
				}
			})
		}
		wg.Wait()
		perKey := map[string][]string{}
		es := batch(t, o, 100)
		for _, e := range es {
			perKey[e.Key] = append(perKey[e.Key], string(e.Payload))
		}
		for p := range producers {
			if got := perKey[fmt.Sprint("user", p)]; fmt.Sprint(got) != "[0 1 2 3 4 5]" {
				t.Errorf("user%d's entries in queue order: %v, want [0 1 2 3 4 5]", p, got)
			}
		}
		if len(es) != producers*each {
			t.Errorf("%d entries queued, want %d", len(es), producers*each)
		}
	})

	now := created.Add(time.Hour)
	const ttl = 30 * time.Second
	lease := func(t *testing.T, o auth.Outbox, owner string, at time.Time) bool {
		t.Helper()
		held, err := o.Lease(t.Context(), owner, at, ttl)
		if err != nil {
			t.Fatalf("Lease(%s): %v", owner, err)
		}
		return held
	}
	release := func(t *testing.T, o auth.Outbox, owner string) {
		t.Helper()
		if err := o.Release(t.Context(), owner); err != nil {
			t.Fatalf("Release(%s): %v", owner, err)
		}
	}
	race := func(t *testing.T, o auth.Outbox, at time.Time) []string {
		t.Helper()
		var mu sync.Mutex
		var holders []string
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				owner := fmt.Sprint("relay-", i)
				held, err := o.Lease(t.Context(), owner, at, ttl)
				if err != nil {
					t.Errorf("Lease(%s): %v", owner, err)
				}
				if held {
					mu.Lock()
					holders = append(holders, owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return holders
	}
	t.Run("RacingRelaysOneLeaseHolder", func(t *testing.T) {
		o := newOutbox(t)
		holders := race(t, o, now)
		if len(holders) != 1 {
			t.Fatalf("8 relays racing for a fresh lease: %v hold it, want exactly one", holders)
		}
		for i := range 8 {
			if owner := fmt.Sprint("relay-", i); owner != holders[0] && lease(t, o, owner, now.Add(time.Second)) {
				t.Fatalf("%s took the lease %s holds", owner, holders[0])
			}
		}
		if !lease(t, o, holders[0], now.Add(time.Second)) {
			t.Fatal("the holder could not renew its lease")
		}
	})
	t.Run("RacingRelaysTakeALapsedLeaseOnce", func(t *testing.T) {
		o := newOutbox(t)
		if !lease(t, o, "dead", now) {
			t.Fatal("first Lease refused")
		}
		if holders := race(t, o, now.Add(ttl+time.Second)); len(holders) != 1 {
			t.Fatalf("8 relays racing for a lapsed lease: %v hold it, want exactly one", holders)
		}
	})
	t.Run("DeadHoldersLeaseLapses", func(t *testing.T) {
		o := newOutbox(t)
		if !lease(t, o, "a", now) {
			t.Fatal("Lease(a) on a free lease refused")
		}
		// a dies without releasing: b waits until the lease runs out.
		if lease(t, o, "b", now.Add(ttl-time.Second)) {
			t.Fatal("b took a's lease before it ran out")
		}
		if !lease(t, o, "b", now.Add(ttl+time.Second)) {
			t.Fatal("b could not take a's lease after it ran out")
		}
		if lease(t, o, "a", now.Add(ttl+2*time.Second)) {
			t.Fatal("a took its lapsed lease back from b")
		}
	})
	t.Run("RenewalExtendsTheLease", func(t *testing.T) {
		o := newOutbox(t)
		if !lease(t, o, "a", now) || !lease(t, o, "a", now.Add(20*time.Second)) {
			t.Fatal("Lease(a) or its renewal refused")
		}
		if lease(t, o, "b", now.Add(ttl+time.Second)) {
			t.Fatal("b took a's lease before its renewal ran out")
		}
		if !lease(t, o, "b", now.Add(20*time.Second+ttl+time.Second)) {
			t.Fatal("b could not take a's lease after the renewal ran out")
		}
	})
	t.Run("ReleaseFreesTheLeaseAtOnce", func(t *testing.T) {
		o := newOutbox(t)
		release(t, o, "a") // no lease yet: nothing to do
		if !lease(t, o, "a", now) {
			t.Fatal("Lease(a) refused")
		}
		release(t, o, "c") // not the holder: the lease stays a's
		if lease(t, o, "b", now.Add(time.Second)) {
			t.Fatal("b took the lease after a non-holder released it")
		}
		release(t, o, "a")
		if !lease(t, o, "b", now.Add(time.Second)) {
			t.Fatal("b could not take the lease a released")
		}
		if lease(t, o, "a", now.Add(2*time.Second)) {
			t.Fatal("a took the lease back from b")
		}
	})
}
