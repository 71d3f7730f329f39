// Package mongostore implements the issuer's MongoDB-backed ports of auth:
// users (UserStore), signing keys (KeyStore) and outboxes (Outbox).
//
// FerretDB v1.24 (the dev stack's MongoDB) pushes down only _id lookups and
// has no partial indexes, so hot lookups go by _id, and indexes are created
// only when missing. Driver errors never leave the package: they are wrapped
// with auth.ErrUnavailable, and bson types stay here.
package mongostore

import (
	"context"
	"fmt"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// OpTimeout bounds each operation so a dead MongoDB gives 503 fast.
const OpTimeout = 3 * time.Second

// indexNames lists the names of coll's indexes. Create only the missing
// ones: FerretDB v1.24 drops the connection when asked to create a sparse
// index that already exists, which made every restart of the issuer on the
// same database fail.
func indexNames(ctx context.Context, coll *mongo.Collection) (map[string]bool, error) {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, s := range specs {
		have[s.Name] = true
	}
	return have, nil
}

// ensureIndex creates the index name on coll unless it exists.
func ensureIndex(ctx context.Context, coll *mongo.Collection, name string, keys bson.D, unique bool) error {
	have, err := indexNames(ctx, coll)
	if err != nil || have[name] {
		return err
	}
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys,
		Options: options.Index().SetName(name).SetUnique(unique)})
	return err
}

// ensureExpiryIndex creates coll's index on expires_at unless it has one: a
// TTL index where the server has them (MongoDB deletes expired documents
// itself), a plain one otherwise (FerretDB), for the sweep's DeleteMany.
func ensureExpiryIndex(ctx context.Context, coll *mongo.Collection) error {
	have, err := indexNames(ctx, coll)
	if err != nil || have["expires_at_ttl"] || have["expires_at_1"] {
		return err
	}
	keys := bson.D{{Key: "expires_at", Value: 1}}
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys,
		Options: options.Index().SetName("expires_at_ttl").SetExpireAfterSeconds(0)})
	if err != nil {
		err = ensureIndex(ctx, coll, "expires_at_1", keys, false)
	}
	return err
}

// findAll runs a find on coll and converts each document with conv; op
// names the operation in errors.
func findAll[D, T any](ctx context.Context, coll *mongo.Collection, op string, filter bson.D,
	opts *options.FindOptionsBuilder, conv func(D) T) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, unavailable(op, err)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, unavailable(op, err)
	}
	out := make([]T, len(docs))
	for i, d := range docs {
		out[i] = conv(d)
	}
	return out, nil
}

func unavailable(op string, err error) error {
	return fmt.Errorf("mongostore: %s: %w: %w", op, auth.ErrUnavailable, err)
}
