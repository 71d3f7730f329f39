package kafkafeed_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A topic holding both formats, as during a rolling upgrade of the issuers:
// batches and single SETs are applied alike, at the start-up replay and
// live. A forged batch, one of another issuer and a corrupt one are
// rejected whole (none of their events is applied) and counted once each;
// the records after them are applied; a redelivered batch only adds
// duplicates.
func TestBatchesAndSETsOnOneTopic(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	topic := topicName(t)
	createTopic(t, brokers, topic, 2)
	w := newWriter(t, brokers, topic, nil)
	now := time.Now()
	events := func(prefix string, n int) []revocation.Event {
		out := make([]revocation.Event, n)
		for i := range out {
			out[i] = fx.userEvent(fmt.Sprintf("%s-%d", prefix, i), now)
		}
		return out
	}
	subs := func(evs []revocation.Event) (out []string) {
		for _, e := range evs {
			out = append(out, e.Subject)
		}
		return out
	}
	backlog, forged, foreign, corrupt := events("backlog", 500), events("forged", 3), events("foreign", 3), events("corrupt", 3)
	for i := range foreign {
		foreign[i].Issuer = "https://evil.test"
	}
	good := fx.SignBatch(t, backlog...)
	bad := fx.SignBatch(t, corrupt...)
	bad[len(bad)/2] ^= 1
	old := fx.userEvent("old-format", now)
	write(t, w,
		batchRecord(fx.ForgeBatch(t, forged...), now),
		batchRecord(good, now),
		batchRecord(fx.foreignBatch(t, foreign), now),
		batchRecord(bad, now),
		record(old.Subject, fx.Sign(t, old), now))

	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	runFeed(t, fx.run(f))
	eventually(t, "caught up", f.CaughtUp)
	st := f.Stats()
	if st.Applied != 501 || st.Batches != 1 || st.Poison != 3 || st.Entries != 501 {
		t.Fatalf("after the replay: Stats = %+v, want 501 applied (one batch, one SET), 3 poison", st)
	}
	for _, sub := range append(subs(backlog), old.Subject) {
		if !fx.revoked(t, f, sub, now) {
			t.Fatalf("%s: not revoked after the replay", sub)
		}
	}
	for _, sub := range subs(append(append(forged, foreign...), corrupt...)) {
		if fx.revoked(t, f, sub, now) {
			t.Fatalf("%s: revoked by a rejected batch", sub)
		}
	}

	live := events("live", 50)
	write(t, w, batchRecord(fx.SignBatch(t, live...), now), batchRecord(good, now))
	eventually(t, "the live batch and the redelivered one", func() bool { return f.Stats().Batches == 3 })
	st = f.Stats()
	if st.Applied != 551 || st.Duplicates != 500 || st.Poison != 3 {
		t.Errorf("live: Stats = %+v, want 551 applied, 500 duplicates, 3 poison", st)
	}
	for _, sub := range subs(live) {
		if !fx.revoked(t, f, sub, now) {
			t.Errorf("%s: the live batch not applied", sub)
		}
	}
}

// foreignBatch is a batch of another issuer's events, signed by a key the
// feed trusts.
func (fx *fixture) foreignBatch(t *testing.T, events []revocation.Event) []byte {
	t.Helper()
	raw, err := revocation.SealBatch(revocation.Batch{ID: "foreign", Issuer: events[0].Issuer,
		Audience: []string{sdktest.Audience}, IssuedAt: time.Now(), Events: events}, fx.Key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
