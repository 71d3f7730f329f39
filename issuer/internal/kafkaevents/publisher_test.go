package kafkaevents

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/segmentio/kafka-go"
)

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func newEvent(sub string, reason string) revocation.Event {
	return revocation.Event{ID: rand.Text(), Issuer: testIssuer, Subject: sub, SessionID: "sid-" + rand.Text(),
		At: time.Now().UTC().Truncate(time.Millisecond), Reason: reason, Initiator: "user", TxnID: "req-" + rand.Text()}
}

func byKey(msgs []kafka.Message, key string) []kafka.Message {
	var out []kafka.Message
	for _, m := range msgs {
		if string(m.Key) == key {
			out = append(out, m)
		}
	}
	return out
}

// TestPublishWritesBatchesAndTeesSETs runs against the dev stack's broker.
// With Kafka up and nothing queued, the events of one Publish go straight
// to Kafka: one signed batch on the verifiers' topic, and, through the
// Tee, one signed SET each on the SET topic, keyed by the user, in order
// in one partition.
func TestPublishWritesBatchesAndTeesSETs(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	_, setTopic := testenv.KafkaTopic(t, "sets")
	signer := newSigner(t)
	sp := newPublisher(t, Config{Brokers: brokers, Topic: setTopic, SETs: true}, signer, newOutbox(t))
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, Tee: sp}, signer, newOutbox(t))
	for _, x := range []*Publisher{p, sp} {
		if err := x.Ready(); err != nil {
			t.Errorf("Ready() = %v with Kafka and the outbox up", err)
		}
	}

	since := time.Now().Add(-2 * time.Second)
	sub := "user-" + rand.Text()
	session := newEvent(sub, revocation.ReasonLogout)
	all := newEvent(sub, revocation.ReasonLogoutGlobal)
	all.SessionID = ""
	token := newEvent(sub, revocation.ReasonAdmin)
	token.SessionID, token.TokenID = "", "jti-"+rand.Text()
	want := []revocation.Event{session, all, token}
	if err := p.Publish(t.Context(), want...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if st := p.Stats(); st.Published != 3 || st.Outboxed != 0 || st.Records != 1 {
		t.Errorf("Stats() = %+v, want 3 published in 1 batch and none queued", st)
	}
	if st := sp.Stats(); st.Published != 3 || st.Outboxed != 0 || st.Records != 3 {
		t.Errorf("SET Publisher: Stats() = %+v, want 3 published as 3 SETs and none queued", st)
	}
	for _, x := range []*Publisher{p, sp} {
		if n, err := x.Pending(t.Context()); err != nil || n != 0 {
			t.Errorf("Pending() = %d, %v; want an empty outbox", n, err)
		}
	}

	var batched []revocation.Event
	var records int
	waitFor(t, "the batch in Kafka", func() bool {
		batched, records = eventsOf(t, signer.JWKS(), readSince(t, brokers, topic, since), sub)
		return len(batched) >= 3
	})
	if records != 1 || len(batched) != 3 {
		t.Fatalf("%d events of %s in %d records, want 3 in one batch", len(batched), sub, records)
	}
	for i, e := range batched {
		w := want[i]
		w.IssuedAt = e.IssuedAt // the batch's
		if e != w || e.IssuedAt.IsZero() {
			t.Errorf("batch event %d is %+v, want %+v", i, e, w)
		}
	}

	var got []kafka.Message
	waitFor(t, "the SETs in Kafka", func() bool {
		got = byKey(readSince(t, brokers, setTopic, since), sub)
		return len(got) >= 3
	})
	if len(got) != 3 {
		t.Fatalf("%d records keyed %s, want 3", len(got), sub)
	}
	for i, m := range got {
		if m.Partition != got[0].Partition {
			t.Errorf("one user's events in partitions %d and %d", got[0].Partition, m.Partition)
		}
		e := checkedEvent(t, signer.JWKS(), m)
		w := want[i]
		if w.TokenID != "" {
			w.Subject = "" // jwt_id names only the token; the record key names the user
		}
		w.IssuedAt = e.IssuedAt
		if e != w {
			t.Errorf("record %d carries %+v, want %+v", i, e, w)
		}
		if e.IssuedAt.IsZero() {
			t.Errorf("record %d: SET without iat", i)
		}
	}
}

func TestNewPublisherRejectsBadConfig(t *testing.T) {
	outbox := newOutbox(t)
	signer := newSigner(t)
	for name, cfg := range map[string]Config{
		"no topic":    {Brokers: []string{"127.0.0.1:1"}, Audience: testAudience},
		"no audience": {Brokers: []string{"127.0.0.1:1"}, Topic: "t"},
		"a batch wait as long as the ack timeout": {Brokers: []string{"127.0.0.1:1"}, Topic: "t", Audience: testAudience,
			BatchWait: time.Second, AckTimeout: time.Second},
	} {
		cfg.Logger = quiet()
		if _, err := NewPublisher(t.Context(), cfg, signer, outbox); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

// failingSigner can't sign: Publish must say so rather than send junk.
type failingSigner struct{}

func (failingSigner) Sign(context.Context, string, jwt.Claims) (string, error) {
	return "", errors.New("no key")
}
func (failingSigner) BatchKey() (revocation.BatchKey, error) {
	return revocation.BatchKey{}, errors.New("no key")
}
func (failingSigner) JWKS() []byte { return []byte(`{"keys":[]}`) }

// TestOutageGoesToOutboxAndRelays stops a dedicated broker: Publish still
// succeeds, the events wait in the outbox, a user's later events queue
// behind the earlier ones even once Kafka is back, and a new Publisher on
// the same database (an issuer restart) relays them all: as one batch, or
// as SETs in order per user.
func TestOutageGoesToOutboxAndRelays(t *testing.T) {
	for _, sets := range []bool{false, true} {
		t.Run(Config{SETs: sets}.format(), func(t *testing.T) { testOutage(t, sets) })
	}
}

func testOutage(t *testing.T, sets bool) {
	topic := "revocations-" + strings.ToLower(rand.Text()[:8])
	b := startBroker(t, topic)
	outbox := newOutbox(t)
	signer := newSigner(t)
	cfg := Config{Brokers: []string{b.addr}, Topic: topic, SETs: sets, AckTimeout: 500 * time.Millisecond,
		RelayInterval: 100 * time.Millisecond}
	p1 := newPublisher(t, cfg, signer, outbox)
	since := time.Now().Add(-2 * time.Second)
	alice, bob, carol := "alice-"+rand.Text(), "bob-"+rand.Text(), "carol-"+rand.Text()

	first := newEvent(alice, revocation.ReasonLogout)
	if err := p1.Publish(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if n, _ := p1.Pending(t.Context()); n != 0 {
		t.Fatalf("broker up: %d events queued, want 0", n)
	}

	b.stop()
	aliceEvents := []revocation.Event{first}
	for i := range 3 {
		e := newEvent(alice, revocation.ReasonLogout)
		aliceEvents = append(aliceEvents, e)
		if err := p1.Publish(t.Context(), e); err != nil {
			t.Fatalf("Publish %d with Kafka down: %v, want nil (queued)", i, err)
		}
	}
	bobEvent := newEvent(bob, revocation.ReasonPasswordChange)
	if err := p1.Publish(t.Context(), bobEvent); err != nil {
		t.Fatalf("Publish with Kafka down: %v", err)
	}
	if n, err := p1.Pending(t.Context()); err != nil || n != 4 {
		t.Fatalf("Pending() = %d, %v with Kafka down; want 4", n, err)
	}
	if err := p1.Ready(); err != nil {
		t.Errorf("Ready() = %v with Kafka down and the outbox usable", err)
	}
	if st := p1.Stats(); st.Outboxed != 4 || st.Failures == 0 {
		t.Errorf("Stats() = %+v, want 4 queued and failures counted", st)
	}
	if err := p1.Close(); err != nil { // the issuer stops before relaying
		t.Errorf("Close: %v", err)
	}

	b.start() // same address, same data
	p2 := newPublisher(t, cfg, signer, outbox)
	// Alice still has queued events: her next one queues behind them even
	// though Kafka is up; Carol's goes straight to Kafka.
	last := newEvent(alice, revocation.ReasonLogoutGlobal)
	aliceEvents = append(aliceEvents, last)
	carolEvent := newEvent(carol, revocation.ReasonLogout)
	if err := p2.Publish(t.Context(), last, carolEvent); err != nil {
		t.Fatal(err)
	}
	if st := p2.Stats(); st.Outboxed != 1 || st.Published != 1 {
		t.Errorf("Stats() = %+v, want alice's event queued and carol's published", st)
	}
	if n, _ := p2.Pending(t.Context()); n != 5 {
		t.Errorf("Pending() = %d, want 5", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	relayDone := make(chan error, 1)
	go func() { relayDone <- p2.RunRelay(ctx) }()
	waitFor(t, "the relay to empty the outbox", func() bool {
		n, err := p2.Pending(t.Context())
		return err == nil && n == 0
	})
	cancel()
	if err := <-relayDone; err != nil {
		t.Errorf("RunRelay: %v", err)
	}
	wantRecords := uint64(2) // carol's, then the relay's batch of five
	if sets {
		wantRecords = 6
	}
	if st := p2.Stats(); st.Relayed != 5 || st.Records != wantRecords {
		t.Errorf("Stats() = %+v, want 5 relayed in %d records", st, wantRecords)
	}

	msgs := readSince(t, []string{b.addr}, topic, since)
	got, _ := eventsOf(t, signer.JWKS(), msgs, alice)
	gotIDs, wantIDs := firstSeen(ids(got)), ids(aliceEvents)
	if !sets { // a batch is in order; batches come in any order
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("alice's events arrived as %v, want %v", gotIDs, wantIDs)
	}
	for who, e := range map[string]revocation.Event{bob: bobEvent, carol: carolEvent} {
		recs, _ := eventsOf(t, signer.JWKS(), msgs, who)
		if len(recs) == 0 {
			t.Errorf("no event of %s", who)
			continue
		}
		if got := recs[0]; got.ID != e.ID || got.Reason != e.Reason {
			t.Errorf("%s: got %+v, want %+v", who, got, e)
		}
	}
}

// downOutbox is an outbox whose database is down.
type downOutbox struct{}

var errDown = fmt.Errorf("outbox: %w: connection refused", auth.ErrUnavailable)

func (downOutbox) Enqueue(context.Context, ...auth.OutboxEntry) error { return errDown }
func (downOutbox) Queued(context.Context, ...string) (map[string]bool, error) {
	return nil, errDown
}
func (downOutbox) Batch(context.Context, int) ([]auth.OutboxEntry, error) { return nil, errDown }
func (downOutbox) Delete(context.Context, ...string) error                { return errDown }
func (downOutbox) Failed(context.Context, ...string) error                { return errDown }
func (downOutbox) Pending(context.Context) (int64, error)                 { return 0, errDown }
func (downOutbox) Lease(context.Context, string, time.Time, time.Duration) (bool, error) {
	return false, errDown
}
func (downOutbox) Release(context.Context, string) error { return errDown }

// TestPublishFailsWithoutKafkaAndOutbox: no broker and no usable outbox.
func TestPublishFailsWithoutKafkaAndOutbox(t *testing.T) {
	signer := newSigner(t)
	nowhere := closedPort(t)
	down := downOutbox{}
	p := newPublisher(t, Config{Brokers: []string{nowhere}, Topic: "t", AckTimeout: 200 * time.Millisecond}, signer, down)
	err := p.Publish(t.Context(), newEvent("user-"+rand.Text(), revocation.ReasonLogout))
	if !errors.Is(err, ErrUndelivered) || !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Publish with Kafka and the outbox down: %v, want ErrUndelivered and auth.ErrUnavailable", err)
	}
	if err := p.Ready(); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Ready() = %v, want auth.ErrUnavailable", err)
	}

	fs := newPublisher(t, Config{Brokers: []string{nowhere}, Topic: "t"}, failingSigner{}, down)
	if err := fs.Publish(t.Context(), newEvent("u", revocation.ReasonLogout)); err == nil {
		t.Error("Publish with a failing signer succeeded")
	}
}

// TestRelaysInEveryReplicaPublishOnce: events queued while Kafka was
// unreachable are relayed by two replicas running RunRelay at once, each
// exactly once; as SETs, in order per user.
func TestRelaysInEveryReplicaPublishOnce(t *testing.T) {
	for _, sets := range []bool{false, true} {
		t.Run(Config{SETs: sets}.format(), func(t *testing.T) { testRelaysOnce(t, sets) })
	}
}

func testRelaysOnce(t *testing.T, sets bool) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	outbox := newOutbox(t)
	signer := newSigner(t)
	since := time.Now().Add(-2 * time.Second)

	cut := newPublisher(t, Config{Brokers: []string{closedPort(t)}, Topic: topic, SETs: sets, AckTimeout: 200 * time.Millisecond},
		signer, outbox)
	users := []string{"u1-" + rand.Text(), "u2-" + rand.Text(), "u3-" + rand.Text()}
	want := map[string][]string{}
	var batch []revocation.Event
	for range 4 {
		for _, u := range users {
			e := newEvent(u, revocation.ReasonLogout)
			want[u] = append(want[u], e.ID)
			batch = append(batch, e)
		}
	}
	if err := cut.Publish(t.Context(), batch...); err != nil {
		t.Fatalf("Publish with Kafka unreachable: %v", err)
	}
	if n, _ := cut.Pending(t.Context()); n != int64(len(batch)) {
		t.Fatalf("Pending() = %d, want %d", n, len(batch))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	replicas := []*Publisher{
		newPublisher(t, Config{Brokers: brokers, Topic: topic, SETs: sets, RelayInterval: 20 * time.Millisecond}, signer, outbox),
		newPublisher(t, Config{Brokers: brokers, Topic: topic, SETs: sets, RelayInterval: 20 * time.Millisecond}, signer, outbox),
	}
	done := make(chan error, len(replicas))
	for _, r := range replicas {
		go func() { done <- r.RunRelay(ctx) }()
	}
	waitFor(t, "the outbox to drain", func() bool {
		n, err := replicas[0].Pending(t.Context())
		return err == nil && n == 0
	})
	cancel()
	for range replicas {
		if err := <-done; err != nil {
			t.Errorf("RunRelay: %v", err)
		}
	}
	if got := replicas[0].Stats().Relayed + replicas[1].Stats().Relayed; got != uint64(len(batch)) {
		t.Errorf("relayed %d events in all, want %d", got, len(batch))
	}
	msgs := readSince(t, brokers, topic, since)
	for _, u := range users {
		got, _ := eventsOf(t, signer.JWKS(), msgs, u)
		gotIDs := ids(got)
		if !sets { // a batch is in order; batches come in any order
			slices.Sort(gotIDs)
			slices.Sort(want[u])
		}
		if !slices.Equal(gotIDs, want[u]) {
			t.Errorf("%s: events %v, want each of %v once, in order", u, gotIDs, want[u])
		}
	}
}

// TestNoBrokersKeepsEventsInOutbox: without Kafka configured, Publish still
// succeeds and the events wait in the outbox.
func TestNoBrokersKeepsEventsInOutbox(t *testing.T) {
	outbox := newOutbox(t)
	p := newPublisher(t, Config{}, newSigner(t), outbox)
	if err := p.Publish(t.Context(), newEvent("user-"+rand.Text(), revocation.ReasonLogout)); err != nil {
		t.Fatalf("Publish without brokers: %v", err)
	}
	if n, err := p.Pending(t.Context()); err != nil || n != 1 {
		t.Errorf("Pending() = %d, %v; want 1", n, err)
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready() = %v with the outbox usable", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.RunRelay(ctx); err != nil {
		t.Errorf("RunRelay: %v", err)
	}
}
