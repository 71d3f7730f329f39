package kafkaevents

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// TestConcurrentPublishesShareBatches: the events of Publish calls made at
// once share a few batches (a verifier checks a few signatures, not one an
// event), and each event reaches Kafka exactly once.
func TestConcurrentPublishesShareBatches(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	signer := newSigner(t)
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, BatchWait: 100 * time.Millisecond}, signer, newOutbox(t))
	since := time.Now().Add(-2 * time.Second)
	sub := "user-" + rand.Text()
	const n = 200
	var wg sync.WaitGroup
	want := make([]string, n)
	for i := range n {
		e := newEvent(sub, revocation.ReasonLogout)
		want[i] = e.ID
		wg.Go(func() {
			if err := p.Publish(t.Context(), e); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	// One write at once, then one at most every 100 ms while the calls
	// come: a handful of batches however the goroutines are scheduled.
	if st.Published != n || st.Outboxed != 0 || st.Records == 0 || st.Records > 20 {
		t.Errorf("Stats() = %+v, want %d published in a few batches", st, n)
	}
	var got []revocation.Event
	var records int
	waitFor(t, "the events in Kafka", func() bool {
		got, records = eventsOf(t, signer.JWKS(), readSince(t, brokers, topic, since), sub)
		return len(got) >= n
	})
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) || uint64(records) != st.Records {
		t.Errorf("%d events in %d records, want each of the %d once, in %d", len(gotIDs), records, n, st.Records)
	}
	t.Logf("%d concurrent Publish calls: %d batches", n, records)
}

// TestRelayChecksWhatItSigns: the batch relay signs again only the outbox
// entries that verify against the issuer's keys; one that does not (a SET
// of another key, or not a SET: the database was written by someone else)
// is dropped, reaches no verifier, and does not hold up the others.
func TestRelayChecksWhatItSigns(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	outbox := newOutbox(t)
	signer, other := newSigner(t), newSigner(t)
	since := time.Now().Add(-2 * time.Second)
	sub := "user-" + rand.Text()
	good, forged := newEvent(sub, revocation.ReasonLogout), newEvent(sub, revocation.ReasonLogout)
	sign := func(s Signer, e revocation.Event) []byte {
		set, err := s.Sign(t.Context(), revocation.TokenType, revocation.NewSET(e, testAudience))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(set)
	}
	if err := outbox.Enqueue(t.Context(),
		auth.OutboxEntry{Key: sub, Payload: sign(other, forged), CreatedAt: time.Now()},
		auth.OutboxEntry{Key: sub, Payload: []byte("not a SET"), CreatedAt: time.Now()},
		auth.OutboxEntry{Key: sub, Payload: sign(signer, good), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, RelayInterval: 20 * time.Millisecond}, signer, outbox)
	relayUntilEmpty(t, p)
	var got []revocation.Event
	waitFor(t, "the good event in Kafka", func() bool {
		got, _ = eventsOf(t, signer.JWKS(), readSince(t, brokers, topic, since), sub)
		return len(got) > 0
	})
	if !slices.Equal(ids(got), []string{good.ID}) {
		t.Errorf("relayed %v, want only %s", ids(got), good.ID)
	}
	if st := p.Stats(); st.Relayed != 1 || st.Failures < 2 {
		t.Errorf("Stats() = %+v, want 1 relayed and the 2 bad entries counted", st)
	}
}

// TestClosingQueuesWhatWaits: events that wait for their write, or whose
// write is under way, when the Publisher closes (the issuer stops) are
// queued in the outbox, not lost.
func TestClosingQueuesWhatWaits(t *testing.T) {
	outbox := newOutbox(t)
	// A broker that never answers holds a write until its deadline; after
	// a write, the next waits a minute.
	p := newPublisher(t, Config{Brokers: []string{silentBroker(t)}, Topic: "t", AckTimeout: 2 * time.Minute,
		BatchWait: time.Minute}, newSigner(t), outbox)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := p.Publish(t.Context(), newEvent("user-"+rand.Text(), revocation.ReasonLogout)); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	waitFor(t, "the three events to wait for their write, or to be written", func() bool {
		p.group.mu.Lock()
		defer p.group.mu.Unlock()
		n := p.group.writing
		for _, c := range p.group.queue {
			n += len(c.recs)
		}
		return n == 3
	})
	go func() { _ = p.Close() }()
	wg.Wait()
	if n, err := p.Pending(t.Context()); err != nil || n != 3 {
		t.Errorf("Pending() = %d, %v; want the 3 events queued", n, err)
	}
}

// TestTeeFailureFailsPublish: when the SET Publisher can neither write nor
// queue, Publish fails (the caller retries, and its claims are given up),
// although the verifiers' topic has the events.
func TestTeeFailureFailsPublish(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	signer := newSigner(t)
	claims := newClaims()
	sp := newPublisher(t, Config{Brokers: []string{closedPort(t)}, Topic: "sets", SETs: true, AckTimeout: 200 * time.Millisecond},
		signer, downOutbox{})
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, Tee: sp, Claims: claims}, signer, newOutbox(t))
	e := newEvent("user-"+rand.Text(), revocation.ReasonLogout)
	if err := p.Publish(t.Context(), e); !errors.Is(err, ErrUndelivered) {
		t.Fatalf("Publish with the SET topic and its outbox down: %v, want ErrUndelivered", err)
	}
	if st := p.Stats(); st.Published != 1 {
		t.Errorf("Stats() = %+v, want the batch published", st)
	}
	held, settled, err := claims.Claim(t.Context(), "next", time.Now(), time.Now().Add(time.Minute), claimKey(e))
	if err != nil || len(held) != 1 || len(settled) != 0 {
		t.Errorf("the session's claim after the failed Publish: held %v, settled %v, %v; want it given up", held, settled, err)
	}
}

// silentBroker is a loopback address that accepts connections and never
// answers: a write there waits for its deadline.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln.Addr().String()
}

// relayUntilEmpty runs p's relay until its outbox is empty, then stops it.
func relayUntilEmpty(t *testing.T, p *Publisher) {
	t.Helper()
	rctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.RunRelay(rctx) }()
	waitFor(t, "the relay to empty the outbox", func() bool {
		n, err := p.Pending(t.Context())
		return err == nil && n == 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RunRelay: %v", err)
	}
}
