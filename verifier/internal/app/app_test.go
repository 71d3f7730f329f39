package app_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Without brokers the verifier runs (loudly) without revocations; the
// operational endpoints answer.
func TestOperationalEndpoints(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL})
	if code, _ := v.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))
	if code := v.check(t, tok); code != 200 {
		t.Fatalf("check: %d", code)
	}
	v.check(t, "")
	code, body := v.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`jotguard_verifier_decisions_total{reason="allowed"} 1`,
		`jotguard_verifier_decisions_total{reason="missing_token"} 1`,
		`jotguard_verifier_decisions_total{reason="revoked"} 0`,
		"jotguard_verifier_decision_seconds_count 2",
		"jotguard_verifier_jwks_age_seconds ",
		"jotguard_verifier_revocations_enabled 0",
		"jotguard_verifier_ready 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := v.get(t, "/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404 (no upstream)", code)
	}
}

// With revocations configured, /metrics also reports the feed.
func TestFeedMetrics(t *testing.T) {
	stack := stackEnv(t)
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL,
		"JOTGUARD_KAFKA_BROKERS": stack["JOTGUARD_KAFKA_BROKERS"], "JOTGUARD_REVOCATION_TOPIC": stack["JOTGUARD_REVOCATION_TOPIC"]})
	waitReady(t, v, 30*time.Second)
	for _, m := range []string{"jotguard_verifier_revocation_lag", "jotguard_verifier_revocation_set_size",
		"jotguard_verifier_revocation_set_bytes",
		"jotguard_verifier_revocation_caught_up", "jotguard_verifier_revocation_contact_age_seconds",
		"jotguard_verifier_revocation_degraded"} {
		if v.metric(t, m) == "" {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if got := v.metric(t, "jotguard_verifier_revocation_caught_up"); got != "1" {
		t.Errorf("caught_up = %q once ready", got)
	}
	// the tables' bytes: 16 a slot (the shared topic may bring events at
	// any time, so no comparison with set_size)
	bytes, err := strconv.ParseFloat(v.metric(t, "jotguard_verifier_revocation_set_bytes"), 64)
	if err != nil || bytes < 0 || int64(bytes)%16 != 0 {
		t.Errorf("set_bytes %v (%v), want 16 bytes a slot", bytes, err)
	}
}

// JOTGUARD_VERIFY_CACHE_SIZE=0 turns the cache off, as the sdk's
// CacheSize 0 does; tokens are still checked.
func TestCacheSize(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_VERIFY_CACHE_SIZE": "0"})
	waitReady(t, v, 10*time.Second)
	tok := iss.Mint(t, iss.Claims("alice"))
	for range 2 {
		if code := v.check(t, tok); code != 200 {
			t.Fatalf("check without a cache: %d", code)
		}
	}
	if code := v.check(t, tok+"x"); code != 401 {
		t.Fatalf("check of a broken token without a cache: %d", code)
	}
}
