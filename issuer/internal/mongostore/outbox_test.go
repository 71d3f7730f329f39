package mongostore_test

import (
	"fmt"
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
