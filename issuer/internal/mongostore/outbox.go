package mongostore

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// RevocationOutbox is the collection of revocation events waiting for
// Kafka; its lease is in RevocationOutbox + "_lease".
const RevocationOutbox = "revocation_outbox"

// SETOutbox is the collection of the per-event SETs waiting for the SET
// topic (JOTGUARD_SET_TOPIC), with its own lease: an outage of that topic
// holds up no event for the verifiers.
const SETOutbox = "revocation_set_outbox"

// Outbox implements auth.Outbox on one collection: one document per entry,
// _id = a time-ordered id (Unix nanoseconds, monotonic in this process, and
// a random suffix), so _id order is queue order. The lease is kept in the
// collection named like the outbox plus "_lease" (see Lease).
type Outbox struct {
	coll, lease *mongo.Collection
	lastID      atomic.Int64
}

var _ auth.Outbox = (*Outbox)(nil)

// outboxDoc is the stored form of an entry; the field names are those of
// the revocation outbox since it began (sub: the user id, set: the signed
// SET; documents queued before the Outbox port also carry a jti, unread).
type outboxDoc struct {
	ID        string            `bson:"_id"`
	Key       string            `bson:"sub"`
	Payload   []byte            `bson:"set"` // reads a string or binary data
	CreatedAt time.Time         `bson:"created_at"`
	Attempts  int               `bson:"attempts"`
	Trace     map[string]string `bson:"trace,omitempty"`
}

// legacyLeaseID is the lease document of relays before lease terms.
const legacyLeaseID = "relay"

// NewOutbox returns the outbox kept in collection of db (RevocationOutbox,
// or another for another kind of message) and creates its index on the
// ordering key, which serves Queued on MongoDB.
func NewOutbox(ctx context.Context, db *mongo.Database, collection string) (*Outbox, error) {
	o := &Outbox{coll: db.Collection(collection), lease: db.Collection(collection + "_lease")}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ensureIndex(ctx, o.coll, "sub_1", bson.D{{Key: "sub", Value: 1}}, false); err != nil {
		return nil, unavailable("create outbox index", err)
	}
	return o, nil
}

// nextID returns a time-ordered id, monotonic in this process.
func (o *Outbox) nextID() string {
	n := time.Now().UnixNano()
	for {
		last := o.lastID.Load()
		if n <= last {
			n = last + 1
		}
		if o.lastID.CompareAndSwap(last, n) {
			break
		}
	}
	return fmt.Sprintf("%020d-%s", n, strings.ToLower(rand.Text()[:8]))
}

// Enqueue implements auth.Outbox, with one ordered insert.
func (o *Outbox) Enqueue(ctx context.Context, entries ...auth.OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	docs := make([]any, len(entries))
	now := time.Now().UTC()
	for i, e := range entries {
		if e.CreatedAt.IsZero() {
			e.CreatedAt = now
		}
		// A payload that is text is stored as a string, as the revocation
		// outbox always stored its SETs; other bytes as binary data.
		var payload any = e.Payload
		if utf8.Valid(e.Payload) {
			payload = string(e.Payload)
		}
		doc := bson.D{{Key: "_id", Value: o.nextID()}, {Key: "sub", Value: e.Key}, {Key: "set", Value: payload},
			{Key: "created_at", Value: e.CreatedAt}, {Key: "attempts", Value: 0}}
		if len(e.Trace) > 0 {
			doc = append(doc, bson.E{Key: "trace", Value: e.Trace})
		}
		docs[i] = doc
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if _, err := o.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true)); err != nil {
		return unavailable("outbox insert", err)
	}
	return nil
}

// Queued implements auth.Outbox.
func (o *Outbox) Queued(ctx context.Context, keys ...string) (map[string]bool, error) {
	if len(keys) == 0 {
		return map[string]bool{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	cur, err := o.coll.Find(ctx, bson.D{{Key: "sub", Value: bson.D{{Key: "$in", Value: keys}}}},
		options.Find().SetProjection(bson.D{{Key: "sub", Value: 1}}))
	if err != nil {
		return nil, unavailable("outbox keys", err)
	}
	var docs []struct {
		Key string `bson:"sub"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, unavailable("outbox keys", err)
	}
	out := map[string]bool{}
	for _, d := range docs {
		out[d.Key] = true
	}
	return out, nil
}

// Batch implements auth.Outbox.
func (o *Outbox) Batch(ctx context.Context, limit int) ([]auth.OutboxEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	cur, err := o.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, unavailable("read outbox", err)
	}
	var docs []outboxDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, unavailable("read outbox", err)
	}
	out := make([]auth.OutboxEntry, len(docs))
	for i, d := range docs {
		out[i] = auth.OutboxEntry{ID: d.ID, Key: d.Key, Payload: d.Payload, CreatedAt: d.CreatedAt.UTC(), Attempts: d.Attempts,
			Trace: d.Trace}
	}
	return out, nil
}

// Delete implements auth.Outbox.
func (o *Outbox) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if _, err := o.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return unavailable("outbox delete", err)
	}
	return nil
}

// Failed implements auth.Outbox.
func (o *Outbox) Failed(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := o.coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}}})
	if err != nil {
		return unavailable("outbox attempts", err)
	}
	return nil
}

// Pending implements auth.Outbox.
func (o *Outbox) Pending(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	n, err := o.coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, unavailable("count outbox", err)
	}
	return n, nil
}

// Lease implements auth.Outbox.
//
// FerretDB v1.24 does not apply findOneAndUpdate (nor any filtered update)
// atomically: racing relays all took one lapsed lease (storetest caught
// it). What it does apply atomically is an insert against the unique _id.
// So the lease is a sequence of terms, one document each, _id "relay:"+term
// (zero-padded: _id order is term order), and the newest term holds it.
// Taking or renewing the lease inserts the next term: of racing relays one
// inserts it and the others get a duplicate key. A relay that read an old
// term, and inserted a term since deleted, finds a newer term afterwards and
// withdraws. Older terms are then deleted. A document _id "relay" (the lease
// as relays before the terms kept it) is honoured while it runs.
func (o *Outbox) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	legacy, top, err := o.leaseTerms(ctx)
	if err != nil {
		return false, unavailable("outbox lease", err)
	}
	now = now.UTC()
	for _, l := range []*leaseDoc{legacy, top} {
		if l != nil && l.Owner != owner && !l.Until.Before(now) {
			return false, nil // another relay's lease runs
		}
	}
	term := int64(1)
	if top != nil {
		term = top.term() + 1
	}
	mine := leaseTerm(term)
	_, err = o.lease.InsertOne(ctx, leaseDoc{ID: mine, Owner: owner, Until: now.Add(ttl)})
	switch {
	case mongo.IsDuplicateKeyError(err):
		return false, nil // another relay took this term first
	case err != nil:
		return false, unavailable("outbox lease", err)
	}
	newer, err := o.lease.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: mine}}}})
	if err != nil || newer > 0 {
		_, _ = o.lease.DeleteOne(ctx, bson.D{{Key: "_id", Value: mine}})
		if err != nil {
			return false, unavailable("outbox lease", err)
		}
		return false, nil // read a deleted term: a newer one holds the lease
	}
	// Best effort: a term left over is deleted by the next renewal.
	_, _ = o.lease.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: leaseTerm(0)}, {Key: "$lt", Value: mine}}}})
	return true, nil
}

// leaseDoc is one term of the lease, or the legacy lease document.
type leaseDoc struct {
	ID    string    `bson:"_id"`
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

const leasePrefix = "relay:"

func leaseTerm(n int64) string { return fmt.Sprintf("%s%020d", leasePrefix, n) }

func (l *leaseDoc) term() int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(l.ID, leasePrefix), 10, 64)
	return n
}

// leaseTerms reads the lease documents (a few): the legacy one, if any, and
// the newest term, if any.
func (o *Outbox) leaseTerms(ctx context.Context) (legacy, top *leaseDoc, err error) {
	cur, err := o.lease.Find(ctx, bson.D{})
	if err != nil {
		return nil, nil, err
	}
	var docs []leaseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, nil, err
	}
	for i := range docs {
		switch d := &docs[i]; {
		case d.ID == legacyLeaseID:
			legacy = d
		case strings.HasPrefix(d.ID, leasePrefix) && (top == nil || d.ID > top.ID):
			top = d
		}
	}
	return legacy, top, nil
}

// Release implements auth.Outbox: it ends owner's term, if it is the newest.
func (o *Outbox) Release(ctx context.Context, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, top, err := o.leaseTerms(ctx)
	if err == nil && top != nil && top.Owner == owner {
		_, err = o.lease.UpdateOne(ctx, bson.D{{Key: "_id", Value: top.ID}, {Key: "owner", Value: owner}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: time.Unix(0, 0).UTC()}}}})
	}
	if err != nil {
		return unavailable("outbox lease release", err)
	}
	return nil
}
