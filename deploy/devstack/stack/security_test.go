package stack

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// TestKafkaRequiresSASL: with a SASL user the broker answers only a client
// that authenticates as that user, and the exports carry its settings.
// (The sdk's kafkafeed tests run every mechanism over TLS.)
func TestKafkaRequiresSASL(t *testing.T) {
	s, err := Start(t.Context(), Options{Services: []string{Kafka}, Topic: "sasl", Partitions: 1, Logger: quietLogger(),
		KafkaSASL: KafkaSASL{Mechanism: "PLAIN", User: "jotguard", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := strings.Join(s.Env(), "\n")
	for _, want := range []string{"JOTGUARD_KAFKA_SASL_MECHANISM=PLAIN", "JOTGUARD_KAFKA_SASL_USERNAME=jotguard", "JOTGUARD_KAFKA_SASL_PASSWORD=s3cret"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "JOTGUARD_KAFKA_TLS") {
		t.Errorf("Env() exports TLS without it:\n%s", env)
	}
	partitions := func(d *kafka.Dialer) error {
		conn, err := d.DialContext(t.Context(), "tcp", s.KafkaBrokers)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.ReadPartitions("sasl")
		return err
	}
	if err := partitions(&kafka.Dialer{Timeout: 10 * time.Second,
		SASLMechanism: plain.Mechanism{Username: "jotguard", Password: "s3cret"}}); err != nil {
		t.Errorf("with the user: %v", err)
	}
	if err := partitions(&kafka.Dialer{Timeout: 10 * time.Second,
		SASLMechanism: plain.Mechanism{Username: "jotguard", Password: "wrong"}}); !errors.Is(err, kafka.SASLAuthenticationFailed) {
		t.Errorf("with a wrong password: %v, want SASL authentication failed", err)
	}
	if err := partitions(&kafka.Dialer{Timeout: 10 * time.Second}); err == nil {
		t.Error("without SASL: the broker answered")
	}
}

func TestKafkaSecurityOptionsChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		sasl KafkaSASL
		tls  KafkaTLS
		want string
	}{
		"unknown mechanism": {sasl: KafkaSASL{Mechanism: "GSSAPI", User: "u", Password: "p"}, want: "unknown SASL mechanism"},
		"no password":       {sasl: KafkaSASL{Mechanism: "PLAIN", User: "u"}, want: "needs a user and a password"},
		"user alone":        {sasl: KafkaSASL{User: "u"}, want: "without a mechanism"},
		"cert without key":  {tls: KafkaTLS{CertFile: "c.pem"}, want: "both a certificate and a key"},
		"client CA alone":   {tls: KafkaTLS{ClientCAFile: "ca.pem"}, want: "both a certificate and a key"},
		"missing files":     {tls: KafkaTLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, want: "TLS certificate"},
	} {
		_, err := Start(t.Context(), Options{Services: []string{Kafka}, Logger: quietLogger(), KafkaSASL: tc.sasl, KafkaTLS: tc.tls})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Start: %v, want an error with %q", name, err, tc.want)
		}
	}
}
