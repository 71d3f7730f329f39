package mongostore

import (
	"context"
	"errors"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// AuditCollection is the MongoDB collection of the audit log.
const AuditCollection = "audit"

// AuditLog implements auth.AuditLog: one document per entry, _id = the
// entry id, which sorts by time, so a page is a range of _id. Entries
// expire at expires_at: a TTL index deletes them where the server has TTL
// indexes (MongoDB), DeleteExpired sweeps either way (FerretDB has none).
// Indexes on actor, target and type serve the filters on MongoDB.
type AuditLog struct {
	coll *mongo.Collection
}

var _ auth.AuditLog = (*AuditLog)(nil)

type auditDoc struct {
	ID        string    `bson:"_id"`
	Time      time.Time `bson:"time"`
	Type      string    `bson:"type"`
	Actor     string    `bson:"actor,omitempty"`
	Target    string    `bson:"target,omitempty"`
	IP        string    `bson:"ip,omitempty"`
	UserAgent string    `bson:"user_agent,omitempty"`
	RequestID string    `bson:"request_id,omitempty"`
	Detail    string    `bson:"detail,omitempty"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewAuditLog returns the store and creates its indexes.
func NewAuditLog(ctx context.Context, db *mongo.Database) (*AuditLog, error) {
	a := &AuditLog{coll: db.Collection(AuditCollection)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := ensureExpiryIndex(ctx, a.coll)
	for _, field := range []string{"actor", "target", "type"} {
		if err == nil {
			err = ensureIndex(ctx, a.coll, field+"_id", bson.D{{Key: field, Value: 1}, {Key: "_id", Value: -1}}, false)
		}
	}
	if err != nil {
		return nil, unavailable("create audit indexes", err)
	}
	return a, nil
}

// Append implements auth.AuditLog: one insert for the batch.
func (a *AuditLog) Append(ctx context.Context, entries ...auth.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	docs := make([]any, len(entries))
	for i, e := range entries {
		docs[i] = auditDoc{ID: e.ID, Time: e.Time.UTC().Truncate(time.Millisecond), Type: e.Type, Actor: e.Actor,
			Target: e.Target, IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, Detail: e.Detail,
			ExpiresAt: e.ExpiresAt.UTC().Truncate(time.Millisecond)}
	}
	// Unordered: a duplicate (a batch retried after a lost answer) does not
	// stop the others.
	_, err := a.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return unavailable("insert audit entries", err)
	}
	return nil
}

// onlyDuplicates reports a bulk write whose every error is a duplicate
// key: the entries are stored already.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// List implements auth.AuditLog.
func (a *AuditLog) List(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	filter := bson.D{}
	if q.Before != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	if q.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: q.Type})
	}
	if q.UserID != "" {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "actor", Value: q.UserID}}, bson.D{{Key: "target", Value: q.UserID}}}})
	}
	return findAll(ctx, a.coll, "list audit entries", filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(q.Limit)),
		func(d auditDoc) auth.AuditEntry {
			return auth.AuditEntry{ID: d.ID, Time: d.Time.UTC(), Type: d.Type, Actor: d.Actor, Target: d.Target,
				IP: d.IP, UserAgent: d.UserAgent, RequestID: d.RequestID, Detail: d.Detail, ExpiresAt: d.ExpiresAt.UTC()}
		})
}

// DeleteExpired implements auth.AuditLog.
func (a *AuditLog) DeleteExpired(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := a.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now.UTC()}}}})
	if err != nil {
		return unavailable("delete expired audit entries", err)
	}
	return nil
}
