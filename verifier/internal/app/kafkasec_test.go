package app_test

import (
	"crypto/rand"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// securedStack starts a broker that requires sec and returns the dev stack
// settings with it as the Kafka of the test.
func securedStack(t *testing.T, sec sdktest.KafkaSecurity) map[string]string {
	t.Helper()
	stack := stackEnv(t)
	topic := "verifier-sec-" + strings.ToLower(rand.Text()[:8])
	b := sdktest.StartDevstack(t, "kafka", append([]string{"--topic", topic, "--partitions", "6"}, sec.DevstackArgs()...)...)
	stack["JOTGUARD_KAFKA_BROKERS"], stack["JOTGUARD_REVOCATION_TOPIC"] = b.Env("JOTGUARD_KAFKA_BROKERS"), topic
	return stack
}

func settings(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// TestSecuredKafkaEndToEnd: against a broker that requires TLS and SASL,
// bin/issuer publishes a logout and the verifier (app.Run), with the same
// kind of settings, refuses the token. Each mechanism over TLS, and one
// over mutual TLS.
func TestSecuredKafkaEndToEnd(t *testing.T) {
	pki := sdktest.NewTLSFiles(t)
	for _, tc := range []struct {
		name string
		sec  sdktest.KafkaSecurity
	}{
		{"PLAIN over TLS", sdktest.KafkaSecurity{Mechanism: kafkasec.Plain, User: "jg", Password: "pw-plain", TLS: pki}},
		{"SCRAM-SHA-256 over TLS", sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA256, User: "jg", Password: "pw-256", TLS: pki}},
		{"SCRAM-SHA-512 over TLS", sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA512, User: "jg", Password: "pw-512", TLS: pki}},
		{"SCRAM-SHA-512 over mutual TLS", sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA512, User: "jg", Password: "pw-mtls",
			TLS: pki, MutualTLS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := securedStack(t, tc.sec)
			is := startIssuerAt(t, stack, freeAddr(t), settings(tc.sec.Env())...)
			env := is.verifierEnv(stack)
			maps.Copy(env, tc.sec.Env())
			v := startVerifier(t, env)
			waitReady(t, v, 30*time.Second)
			tok := is.login(t, is.register(t))
			if code := v.check(t, tok); code != http.StatusOK {
				t.Fatalf("fresh token: %d, want 200", code)
			}
			is.logout(t, tok, "local")
			untilDenied(t, v, tok, 30*time.Second) // a hang detector, not a timing bound
			if code := v.metric(t, "jotguard_verifier_revocation_degraded"); code != "0" {
				t.Errorf("degraded = %s, want 0", code)
			}
			t.Logf("%s: logout published by the issuer, applied by the verifier (401)", tc.name)
		})
	}
}

// TestSecuredKafkaRefusesVerifier: a verifier whose settings the broker
// refuses logs why, and its /readyz says the revocations are unreachable,
// under the open policy too, past the staleness bound; a valid token gets
// 503, never 200; it stops when asked.
func TestSecuredKafkaRefusesVerifier(t *testing.T) {
	pki := sdktest.NewTLSFiles(t)
	sec := sdktest.KafkaSecurity{Mechanism: kafkasec.ScramSHA512, User: "jg", Password: "right", TLS: pki}
	stack := securedStack(t, sec)
	is := startIssuerAt(t, stack, freeAddr(t), settings(sec.Env())...)
	tok := is.login(t, is.register(t))
	for _, tc := range []struct {
		name   string
		change map[string]string // "" deletes
		says   string
	}{
		{"wrong password", map[string]string{"JOTGUARD_KAFKA_SASL_PASSWORD": "wrong"}, "SASL authentication failed"},
		{"no TLS", map[string]string{"JOTGUARD_KAFKA_TLS": "", "JOTGUARD_KAFKA_TLS_CA_FILE": ""}, "without TLS"},
		{"untrusted CA", map[string]string{"JOTGUARD_KAFKA_TLS_CA_FILE": pki.OtherCA}, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := is.verifierEnv(stack)
			maps.Copy(env, sec.Env())
			for k, v := range tc.change {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			env["JOTGUARD_REVOCATION_MAX_STALENESS"] = "1s" // open policy (the default), stale soon
			v := startVerifier(t, env)
			eventually(t, 30*time.Second, "/readyz says the brokers refuse the feed", func() bool {
				_, body := v.get(t, "/readyz")
				return strings.Contains(body, "refused by the brokers")
			})
			// Past the staleness bound, open would turn ready for an outage.
			eventually(t, 30*time.Second, "the feed reported stale", func() bool {
				return v.metric(t, "jotguard_verifier_revocation_stale") == "1"
			})
			code, body := v.get(t, "/readyz")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "revocations: feed unreachable") {
				t.Errorf("/readyz past the staleness bound: %d %q, want 503 saying the revocations are unreachable", code, body)
			}
			t.Logf("/readyz: %d %s", code, strings.TrimSpace(body))
			if d := v.metric(t, "jotguard_verifier_revocation_degraded"); d != "0" {
				t.Errorf("degraded = %s, want 0: the verifier does not answer by signature and expiry", d)
			}
			if code := v.check(t, tok); code != http.StatusServiceUnavailable {
				t.Errorf("a valid token: %d, want 503 (revocation state unknown)", code)
			}
			if !strings.Contains(v.log.String(), "refuse this client") || !strings.Contains(v.log.String(), tc.says) {
				t.Errorf("the log does not say the brokers refuse the client (%q):\n%s", tc.says, v.log.String())
			}
			if err := v.stop(); err != nil {
				t.Errorf("app.Run: %v", err)
			}
		})
	}
}
