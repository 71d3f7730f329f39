package config_test

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/verifier/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.Issuer != "http://127.0.0.1:8080", c.Addr != "127.0.0.1:8081", len(c.Audience) != 1 || c.Audience[0] != "jotguard",
		c.RevocationTopic != "jotguard.revocations", c.AccessTTL != 5*time.Minute, c.Leeway != 30*time.Second,
		c.FailClosed, c.RevocationFailure != "open", c.MaxStaleness != 30*time.Second, c.Upstream != nil,
		len(c.KafkaBrokers) != 0, c.JWKSURL != "", c.LogFormat != "json", c.CacheSize != 10000, c.AdminAddr != "",
		c.BodyTimeout != 30*time.Second:
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagWinsOverEnv(t *testing.T) {
	c, err := config.Load([]string{"--revocation-failure", "closed", "--kafka-brokers", "a:1, b:2"},
		env(map[string]string{"JOTGUARD_REVOCATION_FAILURE": "open", "JOTGUARD_AUDIENCE": "x,y",
			"JOTGUARD_UPSTREAM": "http://127.0.0.1:3000", "JOTGUARD_PUBLIC_PATHS": "/static,/health"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.FailClosed || len(c.KafkaBrokers) != 2 || len(c.Audience) != 2 || c.Upstream.Host != "127.0.0.1:3000" || len(c.PublicPaths) != 2 {
		t.Fatalf("%+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"JOTGUARD_ISSUER": "ftp://x", "JOTGUARD_AUDIENCE": " , ", "JOTGUARD_VERIFIER_ADDR": "8081",
		"JOTGUARD_KAFKA_BROKERS": "nohost", "JOTGUARD_ACCESS_TTL": "-5m", "JOTGUARD_LEEWAY": "soon",
		"JOTGUARD_REVOCATION_FAILURE": "maybe", "JOTGUARD_REVOCATION_MAX_STALENESS": "0s",
		"JOTGUARD_UPSTREAM": "localhost:3000", "JOTGUARD_JWKS_URL": "/jwks", "JOTGUARD_LOG_LEVEL": "loud",
		"JOTGUARD_LOG_FORMAT": "xml", "JOTGUARD_VERIFY_CACHE_SIZE": "-1", "JOTGUARD_ADMIN_ADDR": "9091",
		"JOTGUARD_PROXY_BODY_TIMEOUT": "0s",
	} {
		_, err := config.Load(nil, env(map[string]string{name: val}))
		if err == nil || !strings.HasPrefix(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%q: error %v, want one line starting with the variable", name, val, err)
		}
	}
	_, err := config.Load(nil, env(map[string]string{"JOTGUARD_ADMIN_ADDR": "127.0.0.1:8081"}))
	if err == nil || !strings.HasPrefix(err.Error(), "JOTGUARD_ADMIN_ADDR:") {
		t.Errorf("admin address = main address: %v", err)
	}
	if c, err := config.Load([]string{"--admin-addr", "0.0.0.0:9091"}, env(nil)); err != nil || c.AdminAddr != "0.0.0.0:9091" {
		t.Errorf("--admin-addr: %q %v", c.AdminAddr, err)
	}
	_, err = config.Load(nil, env(map[string]string{"JOTGUARD_PUBLIC_PATHS": "/static"}))
	if err == nil || !strings.HasPrefix(err.Error(), "JOTGUARD_PUBLIC_PATHS") {
		t.Errorf("public paths without upstream: %v", err)
	}
	for _, bad := range []string{"static", "/static/..", "/a/%2e%2e/b", "/a;x/..;"} {
		_, err = config.Load(nil, env(map[string]string{"JOTGUARD_UPSTREAM": "http://x", "JOTGUARD_PUBLIC_PATHS": "/ok," + bad}))
		if err == nil || !strings.HasPrefix(err.Error(), "JOTGUARD_PUBLIC_PATHS:") {
			t.Errorf("public path %q: %v", bad, err)
		}
	}
}

// 0 turns the cache off; a negative or non-numeric size is refused, not
// read as "off", so a typo cannot silently cost every request an ECDSA
// verify.
func TestVerifyCacheSize(t *testing.T) {
	for _, tt := range []struct {
		env, flag string
		want      int
		bad       bool
	}{
		{env: "", want: 10000},
		{env: "0", want: 0},
		{env: "50000", want: 50000},
		{env: "7", flag: "0", want: 0},
		{env: "-1", bad: true},
		{env: "10k", bad: true},
		{flag: "-5", bad: true},
	} {
		var args []string
		if tt.flag != "" {
			args = []string{"--verify-cache-size", tt.flag}
		}
		c, err := config.Load(args, env(map[string]string{"JOTGUARD_VERIFY_CACHE_SIZE": tt.env}))
		switch {
		case tt.bad && (err == nil || !strings.HasPrefix(err.Error(), "JOTGUARD_VERIFY_CACHE_SIZE:")):
			t.Errorf("env %q flag %q: error %v, want one naming JOTGUARD_VERIFY_CACHE_SIZE", tt.env, tt.flag, err)
		case !tt.bad && (err != nil || c.CacheSize != tt.want):
			t.Errorf("env %q flag %q: CacheSize %d, %v; want %d", tt.env, tt.flag, c.CacheSize, err, tt.want)
		}
	}
}

func TestHelp(t *testing.T) {
	if _, err := config.Load([]string{"--help"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	var b strings.Builder
	config.Usage(&b)
	for _, v := range config.Vars() {
		if !strings.Contains(b.String(), v.Name) || !strings.Contains(b.String(), "--"+v.Flag) {
			t.Errorf("usage lacks %s / --%s", v.Name, v.Flag)
		}
	}
}

// Kafka's TLS and SASL (the variables the issuer shares): off by default,
// set by flag or environment, every documented variable there; a problem across
// settings is one line naming the variable to fix.
func TestKafkaSecurity(t *testing.T) {
	c, err := config.Load(nil, env(nil))
	if err != nil || c.Kafka.TLS || c.Kafka.Mechanism != "" {
		t.Fatalf("defaults: %+v, %v; want plaintext without SASL", c.Kafka, err)
	}
	names := map[string]bool{}
	for _, v := range config.Vars() {
		names[v.Name] = true
	}
	for _, n := range []string{"JOTGUARD_KAFKA_TLS", "JOTGUARD_KAFKA_SASL_MECHANISM", "JOTGUARD_KAFKA_SASL_USERNAME", "JOTGUARD_KAFKA_SASL_PASSWORD"} {
		if !names[n] {
			t.Errorf("documented variable %s is missing", n)
		}
	}
	c, err = config.Load([]string{"--kafka-sasl-mechanism", "plain", "--kafka-tls=on"},
		env(map[string]string{"JOTGUARD_KAFKA_SASL_USERNAME": "verifier", "JOTGUARD_KAFKA_SASL_PASSWORD": "pw"}))
	if err != nil || !c.Kafka.TLS || c.Kafka.Mechanism != "PLAIN" || c.Kafka.Username != "verifier" {
		t.Fatalf("Kafka security: %+v, %v", c.Kafka, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"}, "JOTGUARD_KAFKA_SASL_MECHANISM"},
		{map[string]string{"JOTGUARD_KAFKA_SASL_USERNAME": "verifier"}, "JOTGUARD_KAFKA_SASL_USERNAME"},
		{map[string]string{"JOTGUARD_KAFKA_TLS": "yes please"}, "JOTGUARD_KAFKA_TLS"},
		{map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": "/nonexistent/ca.pem"}, "JOTGUARD_KAFKA_TLS_CA_FILE"},
		{map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_KEY_FILE": "/nonexistent/key.pem"}, "JOTGUARD_KAFKA_TLS_CERT_FILE"},
		{map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "JOTGUARD_KAFKA_SASL_USERNAME": "v",
			"JOTGUARD_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"}, "JOTGUARD_KAFKA_SASL_PASSWORD_FILE"},
	} {
		_, err := config.Load(nil, env(tc.env))
		if err == nil || !strings.HasPrefix(err.Error(), tc.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line starting with %s", tc.env, err, tc.name)
		}
	}
}
