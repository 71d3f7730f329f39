package mongostore_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Keys stored before the KeyStore port (by package keys itself) read back,
// and their generation still conflicts; NewKeys on a database that has the
// index already succeeds.
func TestKeysOfAnExistingDatabase(t *testing.T) {
	db := testenv.MongoDB(t)
	if _, err := mongostore.NewKeys(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	_, err := db.Collection(mongostore.KeysCollection).InsertOne(t.Context(), bson.D{
		{Key: "_id", Value: "old-kid"}, {Key: "gen", Value: int64(1)}, {Key: "alg", Value: "ES256"},
		{Key: "public_key", Value: []byte{1, 2}}, {Key: "private_key", Value: []byte{3, 4}},
		{Key: "encrypted", Value: true}, {Key: "created_at", Value: created}, {Key: "not_before", Value: created},
		{Key: "retire_at", Value: nil}, {Key: "expires_at", Value: nil}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := mongostore.NewKeys(t.Context(), db)
	if err != nil {
		t.Fatalf("NewKeys on a database with keys: %v", err)
	}
	got, err := keys.Keys(t.Context())
	if err != nil || len(got) != 1 {
		t.Fatalf("Keys() = %+v, %v", got, err)
	}
	k := got[0]
	if k.KID != "old-kid" || k.Gen != 1 || !k.Encrypted || !bytes.Equal(k.PrivateKey, []byte{3, 4}) ||
		!k.CreatedAt.Equal(created) || k.RetireAt != nil || k.ExpiresAt != nil {
		t.Fatalf("stored key read back as %+v", k)
	}
	if err := keys.Insert(t.Context(), auth.SigningKey{KID: "new-kid", Gen: 1}); err == nil {
		t.Fatal("generation 1 inserted twice")
	}
}
