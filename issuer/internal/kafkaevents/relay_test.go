package kafkaevents

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// countingOutbox counts the calls of each method of the outbox it wraps.
type countingOutbox struct {
	auth.Outbox
	mu    sync.Mutex
	calls map[string]int
}

func (o *countingOutbox) count(m string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[m]++
}

// take returns the counts so far and starts again from zero.
func (o *countingOutbox) take() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = map[string]int{}
	return c
}

func (o *countingOutbox) Batch(ctx context.Context, n int) ([]auth.OutboxEntry, error) {
	o.count("Batch")
	return o.Outbox.Batch(ctx, n)
}

func (o *countingOutbox) Pending(ctx context.Context) (int64, error) {
	o.count("Pending")
	return o.Outbox.Pending(ctx)
}

func (o *countingOutbox) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	o.count("Lease")
	return o.Outbox.Lease(ctx, owner, now, ttl)
}

// TestRelayLoad: an idle relay only counts the outbox now and then and
// holds no lease; one waiting for Kafka renews its lease and probes the
// broker, but does not re-read the outbox; once the outbox is drained it
// gives the lease up, so another replica could take it at once.
func TestRelayLoad(t *testing.T) {
	topic := "revocations-" + strings.ToLower(rand.Text()[:8])
	b := startBroker(t, topic)
	outbox := &countingOutbox{Outbox: newOutbox(t), calls: map[string]int{}}
	p := newPublisher(t, Config{Brokers: []string{b.addr}, Topic: topic, AckTimeout: 300 * time.Millisecond},
		newSigner(t), outbox)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.RunRelay(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunRelay: %v", err)
		}
	}()

	outbox.take()
	time.Sleep(3 * time.Second)
	if c := outbox.take(); c["Pending"] > 5 || c["Lease"] > 0 || c["Batch"] > 0 {
		t.Errorf("idle for 3 s, the relay called the outbox %v; want a count a second and no lease", c)
	}

	b.stop()
	e := newEvent("user-"+rand.Text(), revocation.ReasonLogout)
	if err := p.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to fail a write and wait for Kafka", func() bool { return p.relayWaits.Load() })
	outbox.take()
	time.Sleep(3 * time.Second)
	if c := outbox.take(); c["Lease"] < 2 || c["Lease"] > 5 || c["Batch"] > 0 || c["Pending"] > 0 {
		t.Errorf("waiting 3 s for Kafka, the relay called the outbox %v; want a lease renewal a second and no reads", c)
	}
	if held, _ := outbox.Lease(t.Context(), "another-replica", time.Now(), time.Second); held {
		t.Error("another replica took the lease while the relay waits for Kafka")
	}

	b.start()
	waitFor(t, "the relay to drain the outbox", func() bool {
		n, err := p.Pending(t.Context())
		return err == nil && n == 0 && !p.relayWaits.Load()
	})
	waitFor(t, "the relay to give up the lease", func() bool {
		held, err := outbox.Lease(t.Context(), "another-replica", time.Now(), time.Second)
		if held {
			_ = outbox.Release(t.Context(), "another-replica")
		}
		return err == nil && held
	})
	if st := p.Stats(); st.Relayed != 1 {
		t.Errorf("Stats() = %+v, want 1 relayed", st)
	}
}
