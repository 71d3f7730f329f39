package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// securedIssuerEnv starts a broker that requires sec, with the dev stack's
// topic, and returns the issuer's settings for it.
func securedIssuerEnv(t *testing.T, sec sdktest.KafkaSecurity) map[string]string {
	t.Helper()
	b := sdktest.StartDevstack(t, "kafka", append([]string{"--partitions", "2"}, sec.DevstackArgs()...)...)
	env := sec.Env()
	env["JOTGUARD_KAFKA_BROKERS"] = b.Addr()
	env["JOTGUARD_REVOCATION_TOPIC"] = b.Env("JOTGUARD_REVOCATION_TOPIC")
	env["JOTGUARD_KAFKA_ACK_TIMEOUT"] = "2s"
	return env
}

// newSessionLoggedOut registers a user, logs it in and out (204), and
// returns the session's claims.
func (s *issuer) newSessionLoggedOut() *sdk.Claims {
	s.t.Helper()
	at, rt := s.login(s.register(pw), pw)
	c, _ := s.verify(at)
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != http.StatusNoContent {
		s.t.Fatalf("logout: %d %s", r.StatusCode, r.body)
	}
	return c
}

// TestSecuredKafka: against a broker that requires TLS and SCRAM, the
// issuer is ready (its writer and its own feed both connect) and a logout
// reaches the topic at once, not through the outbox. (Every mechanism runs
// end to end in the sdk's and the verifier's tests.)
func TestSecuredKafka(t *testing.T) {
	sec := sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA256, User: "jotguard-issuer", Password: "issuer-pw",
		TLS: sdktest.NewTLSFiles(t)}
	s := startIssuer(t, securedIssuerEnv(t, sec))
	since := time.Now().Add(-2 * time.Second)
	c := s.newSessionLoggedOut()
	s.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
	if n := s.metric("jotguard_revocation_events_outboxed_total"); n != 0 {
		t.Errorf("%v events went to the outbox: Kafka did not take them", n)
	}
	if n := s.metric("jotguard_revocation_events_published_total"); n < 1 {
		t.Errorf("published %v events, want the logout's", n)
	}
}

// TestSecuredKafkaWrongPassword: an issuer whose password the broker
// refuses says so in its log, is not ready (its revocation state cannot be
// read), and still answers a logout, whose event waits in the outbox; it
// stops when asked. With the right password, the queued event reaches the
// topic.
func TestSecuredKafkaWrongPassword(t *testing.T) {
	sec := sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA512, User: "jotguard-issuer", Password: "issuer-pw",
		TLS: sdktest.NewTLSFiles(t)}
	env := securedIssuerEnv(t, sec)
	wrong := map[string]string{}
	for k, v := range env {
		wrong[k] = v
	}
	wrong["JOTGUARD_KAFKA_SASL_PASSWORD"] = "not-the-password"
	var logs strings.Builder // written by the issuer's one handler, read once it stopped
	s := runIssuer(t, wrong, &logs)

	deadline := time.Now().Add(30 * time.Second) // a hang detector
	for r := s.do("GET", "/readyz", ""); ; r = s.do("GET", "/readyz", "") {
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("/readyz: %d %s, want 503", r.StatusCode, r.body)
		}
		if strings.Contains(string(r.body), "revocation_state") {
			t.Logf("/readyz: %s", r.body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not name the revocation state: %s", r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	since := time.Now().Add(-2 * time.Second)
	c := s.newSessionLoggedOut()
	if n := s.metric("jotguard_revocation_events_outboxed_total"); n != 1 {
		t.Errorf("%v events in the outbox, want the logout's", n)
	}
	s.keepData = true
	s.stop() // app.Run returns nil: checked by stop
	for _, want := range []string{"refuse this client", "SASL authentication failed", "SCRAM-SHA-512"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "not-the-password") {
		t.Error("the log shows the password")
	}

	// Same database, the right password: the relay delivers the queued event.
	right := map[string]string{}
	for k, v := range env {
		right[k] = v
	}
	right["JOTGUARD_MONGO_DB"], right["JOTGUARD_REDIS_PREFIX"] = s.cfg.MongoDB, s.cfg.RedisPrefix
	fixed := startIssuer(t, right)
	fixed.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
}
