package mongostore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// KeysCollection is the collection of signing keys.
const KeysCollection = "signing_keys"

// Keys implements auth.KeyStore: one document per key, _id = kid. A unique
// index on "gen" makes Insert a compare-and-swap of the generation: of
// replicas racing to add generation n, one inserts and the others get a
// duplicate key error, which is auth.ErrConflict.
type Keys struct {
	coll *mongo.Collection
}

var _ auth.KeyStore = (*Keys)(nil)

// keyDoc is the stored form of a key.
type keyDoc struct {
	ID         string     `bson:"_id"` // kid
	Gen        int64      `bson:"gen"` // unique: one key per rotation
	Alg        string     `bson:"alg"`
	PublicKey  []byte     `bson:"public_key"`  // PKIX DER
	PrivateKey []byte     `bson:"private_key"` // PKCS8, or nonce||AES-GCM(PKCS8) when Encrypted
	Encrypted  bool       `bson:"encrypted"`
	CreatedAt  time.Time  `bson:"created_at"`
	NotBefore  time.Time  `bson:"not_before"` // signs from
	RetireAt   *time.Time `bson:"retire_at"`  // stops signing at; null until superseded
	ExpiresAt  *time.Time `bson:"expires_at"` // leaves the JWKS at
}

// NewKeys returns the key store of db and creates its unique index.
func NewKeys(ctx context.Context, db *mongo.Database) (*Keys, error) {
	k := &Keys{coll: db.Collection(KeysCollection)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ensureIndex(ctx, k.coll, "gen_unique", bson.D{{Key: "gen", Value: 1}}, true); err != nil {
		return nil, unavailable("create key index", err)
	}
	return k, nil
}

// Keys implements auth.KeyStore.
func (k *Keys) Keys(ctx context.Context) ([]auth.SigningKey, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	cur, err := k.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "gen", Value: 1}}))
	if err != nil {
		return nil, unavailable("find keys", err)
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, unavailable("read keys", err)
	}
	slices.SortFunc(docs, func(a, b keyDoc) int { return cmp.Compare(a.Gen, b.Gen) })
	out := make([]auth.SigningKey, len(docs))
	for i, d := range docs {
		out[i] = auth.SigningKey{KID: d.ID, Gen: d.Gen, Alg: d.Alg, PublicKey: d.PublicKey, PrivateKey: d.PrivateKey,
			Encrypted: d.Encrypted, CreatedAt: d.CreatedAt.UTC(), NotBefore: d.NotBefore.UTC(),
			RetireAt: utc(d.RetireAt), ExpiresAt: utc(d.ExpiresAt)}
	}
	return out, nil
}

// Insert implements auth.KeyStore.
func (k *Keys) Insert(ctx context.Context, key auth.SigningKey) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := k.coll.InsertOne(ctx, keyDoc{ID: key.KID, Gen: key.Gen, Alg: key.Alg, PublicKey: key.PublicKey,
		PrivateKey: key.PrivateKey, Encrypted: key.Encrypted, CreatedAt: key.CreatedAt, NotBefore: key.NotBefore,
		RetireAt: key.RetireAt, ExpiresAt: key.ExpiresAt})
	switch {
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("mongostore: insert key generation %d: %w", key.Gen, auth.ErrConflict)
	case err != nil:
		return unavailable("insert key", err)
	}
	return nil
}

// Retire implements auth.KeyStore.
func (k *Keys) Retire(ctx context.Context, gen int64, retireAt, expiresAt time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := k.coll.UpdateOne(ctx, bson.D{{Key: "gen", Value: gen}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "retire_at", Value: retireAt}, {Key: "expires_at", Value: expiresAt}}}})
	if err != nil {
		return unavailable("retire key", err)
	}
	return nil
}

// DeleteExpired implements auth.KeyStore.
func (k *Keys) DeleteExpired(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := k.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}})
	if err != nil {
		return unavailable("delete expired keys", err)
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
