package mongostore_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestUsers(t *testing.T) {
	uri := sdktest.RequireEnv(t, "JOTGUARD_MONGO_URI")
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("JOTGUARD_MONGO_URI: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	if err := client.Ping(t.Context(), nil); err != nil {
		t.Fatalf("JOTGUARD_MONGO_URI is set but the server is unreachable: %v", err)
	}
	storetest.RunUserStore(t, func(t *testing.T) auth.UserStore {
		db := client.Database("test_" + strings.ToLower(rand.Text()))
		t.Cleanup(func() { _ = db.Drop(context.Background()) })
		users, err := mongostore.NewUsers(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		return users
	})
}
