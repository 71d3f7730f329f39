package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A Kafka outage longer than JOTGUARD_REVOCATION_MAX_STALENESS: the open
// policy keeps answering by signature and expiry and reports degraded (and
// stays ready); the closed policy answers 503 and is not ready.
func TestKafkaOutage(t *testing.T) {
	const topic = "jotguard.revocations.outage"
	b := startBroker(t, topic)
	iss := sdktest.NewIssuer(t)
	env := func(policy string) map[string]string {
		return map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_KAFKA_BROKERS": b.Addr,
			"JOTGUARD_REVOCATION_TOPIC": topic, "JOTGUARD_REVOCATION_FAILURE": policy,
			"JOTGUARD_REVOCATION_MAX_STALENESS": "2s"}
	}
	open, closed := startVerifier(t, env("open")), startVerifier(t, env("closed"))
	waitReady(t, open, 30*time.Second)
	waitReady(t, closed, 30*time.Second)
	seen := iss.Mint(t, iss.Claims("alice"))
	for name, v := range map[string]*verifier{"open": open, "closed": closed} {
		if code := v.check(t, seen); code != 200 {
			t.Fatalf("%s, broker up: %d, want 200", name, code)
		}
		if got := v.metric(t, "jotguard_verifier_revocation_degraded"); got != "0" {
			t.Fatalf("%s, broker up: degraded = %q, want 0", name, got)
		}
	}

	b.stop()
	start := time.Now()
	eventually(t, 20*time.Second, "closed policy answers 503", func() bool {
		// the open verifier never stops answering meanwhile
		if code := open.check(t, seen); code != 200 {
			t.Fatalf("open policy during the outage: %d, want 200", code)
		}
		return closed.check(t, seen) == 503
	})
	t.Logf("closed policy turned to 503 %s after the broker stopped (bound 2s)", time.Since(start).Round(time.Millisecond))

	fresh := iss.Mint(t, iss.Claims("bob")) // not cached: verified during the outage
	if code := open.check(t, fresh); code != 200 {
		t.Fatalf("open policy, stale feed, new token: %d, want 200", code)
	}
	if code := closed.check(t, fresh); code != 503 {
		t.Fatalf("closed policy, stale feed, new token: %d, want 503", code)
	}
	if code := closed.check(t, ""); code != 401 {
		t.Fatalf("closed policy, no token: %d, want 401 (no revocation state needed)", code)
	}
	if got := open.metric(t, "jotguard_verifier_revocation_degraded"); got != "1" {
		t.Errorf("open policy: degraded = %q, want 1", got)
	}
	if got := open.metric(t, "jotguard_verifier_revocation_stale"); got != "1" {
		t.Errorf("open policy: stale = %q, want 1", got)
	}
	if got := closed.metric(t, "jotguard_verifier_revocation_degraded"); got != "0" {
		t.Errorf("closed policy: degraded = %q, want 0 (it refuses instead)", got)
	}
	if code, body := open.get(t, "/readyz"); code != 200 {
		t.Errorf("open policy: /readyz %d %s, want 200 (degraded but serving)", code, body)
	}
	if code, _ := closed.get(t, "/readyz"); code != 503 {
		t.Errorf("closed policy: /readyz %d, want 503", code)
	}
	if got := closed.metric(t, `jotguard_verifier_decisions_total{reason="revocation_unavailable"}`); got == "" || got == "0" {
		t.Errorf("closed policy: revocation_unavailable decisions = %q", got)
	}
	// One line each when the mode changes, not one per request.
	eventually(t, 10*time.Second, "the mode change logged", func() bool {
		return strings.Count(open.log.String(), "degraded, verifying by signature and expiry only") == 1 &&
			strings.Count(closed.log.String(), "answering 503 until it is back") == 1
	})
	b.Restart()
	eventually(t, 30*time.Second, "the feed back, logged once", func() bool {
		return strings.Count(open.log.String(), "revocation feed back") == 1
	})
	if n := strings.Count(open.log.String(), "degraded, verifying by signature"); n != 1 {
		t.Errorf("the open verifier logged entering degraded mode %d times, want once", n)
	}
}
