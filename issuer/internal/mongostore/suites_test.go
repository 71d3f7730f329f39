package mongostore_test

import (
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
)

// Each port mongostore implements passes its storetest suite on the dev
// stack's MongoDB-protocol server (FerretDB), each subtest on a fresh
// database. Without JOTGUARD_MONGO_URI they skip, or fail when CI is set,
// before the subtests.

func TestUsers(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunUserStore(t, func(t *testing.T) auth.UserStore {
		users, err := mongostore.NewUsers(t.Context(), testenv.MongoDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return users
	})
}

func TestKeys(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunKeyStore(t, func(t *testing.T) auth.KeyStore {
		keys, err := mongostore.NewKeys(t.Context(), testenv.MongoDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return keys
	})
}

func TestOutbox(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunOutbox(t, func(t *testing.T) auth.Outbox {
		o, err := mongostore.NewOutbox(t.Context(), testenv.MongoDB(t), mongostore.RevocationOutbox)
		if err != nil {
			t.Fatal(err)
		}
		return o
	})
}

func TestLinkTokens(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunLinkTokens(t, func(t *testing.T) auth.LinkTokens {
		l, err := mongostore.NewLinkTokens(t.Context(), testenv.MongoDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestClients(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunClientStore(t, func(t *testing.T) auth.ClientStore {
		return mongostore.NewClients(testenv.MongoDB(t))
	})
}

func TestAuditLog(t *testing.T) {
	testenv.MongoDB(t) // skips, or fails loudly, before the subtests
	storetest.RunAuditLog(t, func(t *testing.T) auth.AuditLog {
		a, err := mongostore.NewAuditLog(t.Context(), testenv.MongoDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
}
