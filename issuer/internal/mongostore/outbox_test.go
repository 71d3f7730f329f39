package mongostore_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Events queued before the Outbox port (by package kafkaevents itself, with
// the SET as a string and a jti) are read and relayed first, and their lease
// document is honoured.
func TestOutboxOfAnExistingDatabase(t *testing.T) {
	db := testenv.MongoDB(t)
	created := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	old := fmt.Sprintf("%020d-abcdefgh", created.UnixNano())
	_, err := db.Collection(mongostore.RevocationOutbox).InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: old}, {Key: "sub", Value: "user-1"}, {Key: "jti", Value: "evt-1"},
		{Key: "set", Value: "eyJh.eyJz.c2ln"}, {Key: "created_at", Value: created}, {Key: "attempts", Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Collection(mongostore.RevocationOutbox+"_lease").InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: "relay"}, {Key: "owner", Value: "relay-old"}, {Key: "until", Value: created.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := mongostore.NewOutbox(t.Context(), db, mongostore.RevocationOutbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(t.Context(), auth.OutboxEntry{Key: "user-1", Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	es, err := o.Batch(t.Context(), 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("Batch = %+v, %v; want the old entry and the new one", es, err)
	}
	if e := es[0]; e.ID != old || e.Key != "user-1" || string(e.Payload) != "eyJh.eyJz.c2ln" ||
		!e.CreatedAt.Equal(created) || e.Attempts != 2 || string(es[1].Payload) != "new" {
		t.Fatalf("Batch = %+v, want the old entry first, as stored", es)
	}
	if held, err := o.Lease(t.Context(), "relay-new", created.Add(time.Minute), 30*time.Second); err != nil || held {
		t.Fatalf("Lease while the old relay's lease runs = %v, %v; want refused", held, err)
	}
	// The new relay stores its SETs as strings too, so an old relay in the
	// middle of a rolling upgrade reads them.
	var doc bson.M
	if err := db.Collection(mongostore.RevocationOutbox).FindOne(t.Context(), bson.D{{Key: "_id", Value: es[1].ID}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["set"].(string); !ok || doc["sub"] != "user-1" {
		t.Fatalf("new entry stored as %v, want sub and set as strings", doc)
	}
}

// The outbox's claims: one holder per key, even among racing owners; a
// settled key is reported as such until its time runs out; an unsettled
// claim whose owner died is taken over once it runs out.
func TestOutboxClaims(t *testing.T) {
	o, err := mongostore.NewOutbox(t.Context(), testenv.MongoDB(t), mongostore.RevocationOutbox)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claim := func(owner string, at time.Time, keys ...string) (held, settled []string) {
		t.Helper()
		held, settled, err := o.Claim(t.Context(), owner, at, at.Add(10*time.Second), keys...)
		if err != nil {
			t.Fatalf("Claim(%s, %v): %v", owner, keys, err)
		}
		slices.Sort(held)
		slices.Sort(settled)
		return held, settled
	}
	if held, settled := claim("a", now, "k1", "k2"); !slices.Equal(held, []string{"k1", "k2"}) || settled != nil {
		t.Fatalf("first claim: held %v, settled %v; want both held", held, settled)
	}
	if held, settled := claim("b", now, "k1", "k3"); !slices.Equal(held, []string{"k3"}) || settled != nil {
		t.Fatalf("b's claim: held %v, settled %v; want k3 held, k1 pending", held, settled)
	}
	if held, _ := claim("a", now, "k1"); !slices.Equal(held, []string{"k1"}) {
		t.Fatalf("a again: held %v, want k1 (its own)", held)
	}
	if err := o.Settle(t.Context(), "a", now.Add(time.Minute), "k1"); err != nil {
		t.Fatal(err)
	}
	if err := o.Settle(t.Context(), "b", now.Add(time.Minute), "k2"); err != nil { // not b's: no effect
		t.Fatal(err)
	}
	if held, settled := claim("c", now.Add(30*time.Second), "k1", "k2"); !slices.Equal(held, []string{"k2"}) ||
		!slices.Equal(settled, []string{"k1"}) {
		t.Fatalf("c's claim after a settled k1 and its k2 ran out: held %v, settled %v; want k2 held, k1 settled", held, settled)
	}
	if err := o.Unclaim(t.Context(), "b", "k3"); err != nil {
		t.Fatal(err)
	}
	if held, _ := claim("d", now, "k3"); !slices.Equal(held, []string{"k3"}) {
		t.Fatalf("after b unclaimed k3: held %v", held)
	}
	if err := o.ExpireClaims(t.Context(), now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if held, _ := claim("e", now, "k1", "k2", "k3"); len(held) != 3 {
		t.Fatalf("after expiry: held %v, want all three", held)
	}

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			held, _, err := o.Claim(t.Context(), fmt.Sprint("racer-", i), now, now.Add(time.Minute), "race")
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			wins.Add(int32(len(held)))
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("racing claims of one key: %d holders, want 1", wins.Load())
	}
}
