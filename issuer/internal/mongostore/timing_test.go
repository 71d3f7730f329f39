package mongostore_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A login reads the same documents, by _id, whether the account exists, does
// not exist, or is asked for with a refused spelling: the database work, and
// so the time, does not tell which addresses have accounts (the password
// check itself costs the same either way: auth hashes a dummy).
func TestLookupsDoTheSameWorkForUnknownAccounts(t *testing.T) {
	uri := sdktest.RequireEnv(t, "JOTGUARD_MONGO_URI")
	var mu sync.Mutex
	var cmds []string
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		cmds = append(cmds, e.CommandName)
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(monitor).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := client.Database("test_" + strings.ToLower(rand.Text()))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	users, err := mongostore.NewUsers(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Create(t.Context(), auth.User{ID: "u1", Email: "known@example.com", Username: "known"}); err != nil {
		t.Fatal(err)
	}
	commands := func(f func()) []string {
		mu.Lock()
		cmds = nil
		mu.Unlock()
		f()
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), cmds...)
	}
	want := commands(func() { _, _ = users.ByEmail(t.Context(), "known@example.com") })
	if len(want) != 2 {
		t.Fatalf("a lookup of a known address ran %v, want two finds", want)
	}
	for name, f := range map[string]func(){
		"unknown address":  func() { _, _ = users.ByEmail(t.Context(), "nobody@example.com") },
		"refused address":  func() { _, _ = users.ByEmail(t.Context(), "") },
		"known username":   func() { _, _ = users.ByUsername(t.Context(), "known") },
		"unknown username": func() { _, _ = users.ByUsername(t.Context(), "nobody") },
	} {
		if got := commands(f); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v as for a known address", name, got, want)
		}
	}
}
