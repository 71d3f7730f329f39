package app_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/revocation"
)

// With Kafka down a logout still answers 204 (the event waits in the
// outbox), and the event arrives once a broker is back on the same address.
func TestKafkaDownLogoutStillSucceeds(t *testing.T) {
	s, b := startIssuerWithBroker(t, map[string]string{"JOTGUARD_KAFKA_ACK_TIMEOUT": "500ms"})
	since := time.Now().Add(-2 * time.Second)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	c, _ := s.verify(at)

	b.Stop()
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 204 {
		t.Fatalf("logout with Kafka down: %d %s", r.StatusCode, r.body)
	}
	if r := s.refresh(rt); r.StatusCode != 401 {
		t.Fatalf("refresh after logout: %d", r.StatusCode)
	}
	b.Restart()
	s.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
}
