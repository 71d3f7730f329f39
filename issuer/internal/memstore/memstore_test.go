package memstore_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/issuer/internal/storetest"
)

func TestUsers(t *testing.T) {
	storetest.RunUserStore(t, func(*testing.T) auth.UserStore { return memstore.NewUsers() })
}

func TestSessions(t *testing.T) {
	storetest.RunSessionStore(t, func(_ *testing.T, grace time.Duration) auth.SessionStore {
		return memstore.NewSessions(grace, nil)
	})
}

func TestKeys(t *testing.T) {
	storetest.RunKeyStore(t, func(*testing.T) auth.KeyStore { return memstore.NewKeys() })
}

func TestOutbox(t *testing.T) {
	storetest.RunOutbox(t, func(*testing.T) auth.Outbox { return memstore.NewOutbox() })
}

func TestLinkTokens(t *testing.T) {
	storetest.RunLinkTokens(t, func(*testing.T) auth.LinkTokens { return memstore.NewLinkTokens() })
}

func TestClients(t *testing.T) {
	storetest.RunClientStore(t, func(*testing.T) auth.ClientStore { return memstore.NewClients() })
}

func TestAuditLog(t *testing.T) {
	storetest.RunAuditLog(t, func(*testing.T) auth.AuditLog { return memstore.NewAuditLog() })
}
