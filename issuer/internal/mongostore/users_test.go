package mongostore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// A sign-up that died between its email claim and its user leaves a claim
// without a user; once stale, a new sign-up takes the email over.
func TestStaleClaimIsTakenOver(t *testing.T) {
	db := testenv.MongoDB(t)
	users, err := mongostore.NewUsers(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Collection(mongostore.EmailsCollection).InsertOne(t.Context(),
		bson.D{{Key: "_id", Value: "ghost@example.com"}, {Key: "user_id", Value: "dead"}, {Key: "created_at", Value: time.Now().Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Collection(mongostore.EmailsCollection).InsertOne(t.Context(),
		bson.D{{Key: "_id", Value: "fresh@example.com"}, {Key: "user_id", Value: "inflight"}, {Key: "created_at", Value: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Create(t.Context(), auth.User{ID: "u1", Email: "ghost@example.com"}); err != nil {
		t.Fatalf("stale claim not taken over: %v", err)
	}
	if err := users.Create(t.Context(), auth.User{ID: "u2", Email: "fresh@example.com"}); !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("a fresh claim (sign-up in flight) was taken over: %v", err)
	}
}

// An issuer restarted on its database finds the indexes there: NewUsers must
// succeed again (FerretDB dropped the connection on re-creating a sparse
// index) and the unique constraints must still hold.
func TestNewUsersOnExistingDatabase(t *testing.T) {
	db := testenv.MongoDB(t)
	for i := range 3 {
		if _, err := mongostore.NewUsers(t.Context(), db); err != nil {
			t.Fatalf("NewUsers #%d on the same database: %v", i+1, err)
		}
	}
	users, _ := mongostore.NewUsers(t.Context(), db)
	if err := users.Create(t.Context(), auth.User{ID: "u1", Email: "a@example.com", Username: "ada"}); err != nil {
		t.Fatal(err)
	}
	if err := users.Create(t.Context(), auth.User{ID: "u2", Email: "a@example.com"}); !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("second sign-up with the same email after restarts: %v, want ErrEmailTaken", err)
	}
}
