package kafkafeed_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/client"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// secured returns the security of a dev-stack broker: mechanism (""
// none) over TLS, mutual when mtls.
func secured(pki *sdktest.TLSFiles, mechanism string, mtls bool) sdktest.KafkaSecurity {
	return sdktest.KafkaSecurity{Mechanism: mechanism, User: "jotguard", Password: "pw-" + strings.ToLower(mechanism),
		TLS: pki, MutualTLS: mtls}
}

// startSecuredBroker runs `devstack --only kafka` requiring sec, with topic.
func startSecuredBroker(t *testing.T, sec sdktest.KafkaSecurity, topic string) []string {
	t.Helper()
	d := sdktest.StartDevstack(t, "kafka", append([]string{"--topic", topic, "--partitions", "2"}, sec.DevstackArgs()...)...)
	return strings.Split(d.Env("JOTGUARD_KAFKA_BROKERS"), ",")
}

// dialer reads the JOTGUARD_KAFKA_* settings in env as the binaries do and
// builds their Dialer.
func dialer(t *testing.T, env map[string]string) *kafka.Dialer {
	t.Helper()
	var c kafkasec.Config
	for _, s := range kafkasec.Settings() {
		if v := env[s.Name]; v != "" {
			if err := s.Set(&c, v); err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
		}
	}
	d, err := c.Dialer("kafkafeed-test")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSecuredBrokerIssuerToFeed: against a broker that requires TLS and
// SASL, the issuer (bin/issuer) publishes a logout, and a Feed with the
// same settings applies it: the logged-out token is refused. One broker per
// mechanism, and one with mutual TLS.
func TestSecuredBrokerIssuerToFeed(t *testing.T) {
	sdktest.RequireEnv(t, "JOTGUARD_DEVSTACK_BIN")
	pki := sdktest.NewTLSFiles(t)
	for _, tc := range []struct {
		name string
		sec  sdktest.KafkaSecurity
	}{
		{"PLAIN over TLS", secured(pki, kafkasec.Plain, false)},
		{"SCRAM-SHA-256 over TLS", secured(pki, kafkasec.ScramSHA256, false)},
		{"SCRAM-SHA-512 over TLS", secured(pki, kafkasec.ScramSHA512, false)},
		{"SCRAM-SHA-512 over mutual TLS", secured(pki, kafkasec.ScramSHA512, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := topicName(t)
			brokers := startSecuredBroker(t, tc.sec, topic)
			env := tc.sec.Env()
			env["JOTGUARD_KAFKA_BROKERS"] = strings.Join(brokers, ",")
			env["JOTGUARD_REVOCATION_TOPIC"] = topic
			iss := sdktest.StartIssuerProcess(t, env) // ready: its own feed caught up, over TLS and SASL

			feed := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Replay: 10 * time.Minute,
				Set: revocation.NewSet(10*time.Minute, nil), Dialer: dialer(t, env)})
			v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"},
				Revocations: feed})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the verifier is ready (keys loaded, replay caught up)", func() bool { return v.Ready() == nil })

			c := client.New(iss.URL)
			email := "sec-" + strings.ToLower(topic[len(topic)-10:]) + "@example.com"
			const password = "correct horse battery staple"
			if _, err := c.Register(t.Context(), client.RegisterRequest{Email: email, Password: password}); err != nil {
				t.Fatal(err)
			}
			tok, err := c.Login(t.Context(), client.LoginRequest{Email: email, Password: password})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(t.Context(), tok.AccessToken); err != nil {
				t.Fatalf("before the logout: %v", err)
			}
			if err := c.Logout(t.Context(), tok.RefreshToken, "local"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the logout applied by the feed", func() bool {
				_, err := v.Verify(t.Context(), tok.AccessToken)
				return errors.Is(err, sdk.ErrRevoked)
			})
			if st := feed.Stats(); st.Applied != 1 || st.Poison != 0 || st.Stale {
				t.Errorf("Stats = %+v, want the one event applied", st)
			}
			t.Logf("%s: the issuer's logout event reached the feed and revoked the token", tc.name)
		})
	}
}

// TestSecuredBrokerRefusesAWrongClient: a Feed whose settings the broker
// refuses says why in its log, is not ready (ErrRefused, under either
// failure policy, for longer than the staleness bound), and stops when
// asked: no hang, no panic. The records it could not read reach a Feed
// with the right settings.
func TestSecuredBrokerRefusesAWrongClient(t *testing.T) {
	pki := sdktest.NewTLSFiles(t)
	sec := secured(pki, kafkasec.ScramSHA512, true)
	topic := topicName(t)
	brokers := startSecuredBroker(t, sec, topic)
	fx := newFixture(t)

	good := dialer(t, sec.Env())
	w := newWriter(t, brokers, topic, nil)
	w.Transport = kafkasec.Transport(good)
	e := fx.userEvent("alice", time.Now())
	write(t, w, record("alice", fx.Sign(t, e), e.At))

	edit := func(change map[string]string) map[string]string {
		env := sec.Env()
		for k, v := range change {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		says string // in the logged error
	}{
		{"wrong password", edit(map[string]string{"JOTGUARD_KAFKA_SASL_PASSWORD": "wrong"}), "SASL authentication failed"},
		{"wrong mechanism", edit(map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": kafkasec.ScramSHA256}), "SASL authentication failed"},
		{"no TLS", edit(map[string]string{"JOTGUARD_KAFKA_TLS": "", "JOTGUARD_KAFKA_TLS_CA_FILE": "",
			"JOTGUARD_KAFKA_TLS_CERT_FILE": "", "JOTGUARD_KAFKA_TLS_KEY_FILE": ""}), "a TLS listener does that to a client without TLS"},
		{"untrusted CA", edit(map[string]string{"JOTGUARD_KAFKA_TLS_CA_FILE": pki.OtherCA}), "certificate signed by unknown authority"},
		{"no client certificate", edit(map[string]string{"JOTGUARD_KAFKA_TLS_CERT_FILE": "", "JOTGUARD_KAFKA_TLS_KEY_FILE": ""}),
			"certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder // written by one handler at a time, read once the feeds stopped
			now := time.Now()
			var mu sync.Mutex
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			for _, closed := range []bool{false, true} {
				f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now),
					Dialer: dialer(t, tc.env), FailClosed: closed, MaxStaleness: time.Second, Now: clock,
					Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, &logs), nil))})
				stop := runFeed(t, fx.run(f))
				eventually(t, "the refusal reported", func() bool { return errors.Is(f.Ready(), kafkafeed.ErrRefused) })
				mu.Lock()
				now = now.Add(time.Minute) // far beyond the staleness bound: open stays unready
				mu.Unlock()
				err := f.Ready()
				if !errors.Is(err, kafkafeed.ErrRefused) || !errors.Is(err, sdk.ErrRevocationUnavailable) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("fail closed %t, stale: Ready() = %v, want ErrRefused saying %q", closed, err, tc.says)
				}
				if _, err := f.Revoked(&sdk.Claims{}); !errors.Is(err, sdk.ErrRevocationUnavailable) {
					t.Errorf("Revoked: %v, want ErrRevocationUnavailable", err)
				}
				stop()
			}
			if out := logs.String(); !strings.Contains(out, "refuse this client") || !strings.Contains(out, tc.says) {
				t.Errorf("the log does not say the brokers refuse the client (%q):\n%s", tc.says, out)
			}
		})
	}

	f := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now), Dialer: good})
	runFeed(t, fx.run(f))
	eventually(t, "the right settings catch up", f.CaughtUp)
	if !fx.revoked(t, f, "alice", time.Now()) {
		t.Error("the event was not applied with the right settings")
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
}
