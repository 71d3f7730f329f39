package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

func env(kv ...string) func(string) string {
	m := map[string]string{"JOTGUARD_MONGO_URI": "mongodb://127.0.0.1:27017", "JOTGUARD_REDIS_URL": "redis://127.0.0.1:6379/0"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "http://127.0.0.1:8080" || c.Addr != "127.0.0.1:8080" || c.MongoDB != "jotguard" ||
		len(c.Audience) != 1 || c.Audience[0] != "jotguard" || c.RevocationTopic != "jotguard.revocations" ||
		c.AccessTTL != 5*time.Minute || c.RefreshTTL != 672*time.Hour || c.Leeway != 30*time.Second ||
		c.RefreshGrace != 10*time.Second || c.SigningAlg != "ES256" || !c.CookieSecure ||
		c.BodyLimit != 64<<10 || c.PasswordMinLength != 12 || c.PasswordMaxLength != 128 ||
		c.Argon2Memory != 19456 || c.Argon2Time != 2 || c.Argon2Threads != 1 || c.HashConcurrency != 0 || c.DrainDelay != 5*time.Second ||
		c.KeyRotateEvery != 720*time.Hour || c.LogFormat != "json" || len(c.KeyEncryptionKey) != 0 ||
		c.UserRecheck != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	c, err := Load([]string{"--access-ttl", "10s", "--audience=a, b", "--trusted-proxies", "10.0.0.0/8,127.0.0.1"},
		env("JOTGUARD_ACCESS_TTL", "1m", "JOTGUARD_KEY_ENCRYPTION_KEY", strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTTL != 10*time.Second || len(c.Audience) != 2 || c.Audience[1] != "b" || len(c.TrustedProxies) != 2 || len(c.KeyEncryptionKey) != 32 {
		t.Fatalf("%+v", c)
	}
	if s := c.KeyEncryptionKey.String(); strings.Contains(s, "ab") {
		t.Fatalf("the key shows in %%v: %s", s)
	}
}

// Mail: unset JOTGUARD_SMTP_URL disables it; JOTGUARD_PUBLIC_URL defaults
// to JOTGUARD_ISSUER; the SMTP password never shows, in logs or in an
// error.
func TestMail(t *testing.T) {
	c, err := Load(nil, env("JOTGUARD_ISSUER", "https://id.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPURL != "" || c.MailFrom != "jotguard <no-reply@localhost>" || c.PublicURL != "https://id.example.com" {
		t.Fatalf("defaults: SMTP %q, from %q, public URL %q", c.SMTPURL, c.MailFrom, c.PublicURL)
	}
	c, err = Load([]string{"--public-url", "https://app.example.com/auth/"}, env(
		"JOTGUARD_SMTP_URL", "smtps://postmaster%40example.com:s3cret@smtp.example.com",
		"JOTGUARD_MAIL_FROM", "Example <no-reply@example.com>"))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://app.example.com/auth" || c.MailFrom != "Example <no-reply@example.com>" ||
		c.SMTPURL != "smtps://postmaster%40example.com:s3cret@smtp.example.com" {
		t.Fatalf("public URL %q, from %q, SMTP %q", c.PublicURL, c.MailFrom, string(c.SMTPURL))
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "smtp", c.SMTPURL)
	if s := b.String() + fmt.Sprint(c.SMTPURL); strings.Contains(s, "s3cret") || !strings.Contains(s, "smtp.example.com") {
		t.Fatalf("the SMTP URL shows as %q", s)
	}
	_, err = Load(nil, env("JOTGUARD_SMTP_URL", "smtp://user:s3cret@smtp.example.com:99999"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad SMTP URL: %v; want an error without the password", err)
	}
}

// JOTGUARD_USER_RECHECK accepts 0: read the user on every refresh.
func TestUserRecheckZero(t *testing.T) {
	c, err := Load([]string{"--user-recheck", "0"}, env("JOTGUARD_USER_RECHECK", "5m"))
	if err != nil || c.UserRecheck != 0 {
		t.Fatalf("--user-recheck 0: %v, %v", c.UserRecheck, err)
	}
}

// JOTGUARD_RATE_LIMITS: the documented defaults, overrides per class, off.
func TestRateLimits(t *testing.T) {
	c, err := Load(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RateLimitsPerClass[ratelimit.Credentials]; got != (ratelimit.Limit{N: 60, Period: time.Minute}) {
		t.Fatalf("default credentials limit %v, want 60/1m", got)
	}
	c, err = Load([]string{"--rate-limits", "credentials=5/10s,revoke=off"}, env("JOTGUARD_RATE_LIMITS", "off"))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimitsPerClass[ratelimit.Credentials].N != 5 || c.RateLimitsPerClass[ratelimit.Revoke].N != 0 || c.RateLimitsPerClass[ratelimit.Account].N != 30 {
		t.Fatalf("--rate-limits: %v", c.RateLimitsPerClass)
	}
	if c, err = Load(nil, env("JOTGUARD_RATE_LIMITS", "off")); err != nil || len(c.RateLimitsPerClass) != 0 {
		t.Fatalf("off: %v, %v", c.RateLimitsPerClass, err)
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"--help"}, env()); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

// A bad or missing value is one line naming the variable.
func TestBadValuesNameTheVariable(t *testing.T) {
	tests := []struct{ name, val string }{
		{"JOTGUARD_MONGO_URI", ""},
		{"JOTGUARD_REDIS_URL", ""},
		{"JOTGUARD_MONGO_URI", "http://x"},
		{"JOTGUARD_REDIS_URL", "http://x"},
		{"JOTGUARD_ISSUER", "not a url"},
		{"JOTGUARD_ISSUER_ADDR", "nocolon"},
		{"JOTGUARD_ACCESS_TTL", "5"},
		{"JOTGUARD_ACCESS_TTL", "-1m"},
		{"JOTGUARD_REFRESH_TTL", "forever"},
		{"JOTGUARD_LEEWAY", "0s"},
		{"JOTGUARD_REFRESH_REUSE_GRACE", "x"},
		{"JOTGUARD_REVOCATION_BATCH_WAIT", "0s"},
		{"JOTGUARD_REVOCATION_BATCH_WAIT", "2s"}, // as long as the ack timeout
		{"JOTGUARD_SIGNING_ALG", "HS256"},
		{"JOTGUARD_SIGNING_ALG", "none"},
		{"JOTGUARD_KEY_ENCRYPTION_KEY", "short"},
		{"JOTGUARD_COOKIE_SECURE", "maybe"},
		{"JOTGUARD_ALLOWED_ORIGINS", "example.com"},
		{"JOTGUARD_TRUSTED_PROXIES", "10.0.0.0/99"},
		{"JOTGUARD_BODY_LIMIT", "lots"},
		{"JOTGUARD_PASSWORD_MIN_LENGTH", "4"},
		{"JOTGUARD_ARGON2_MEMORY", "0"},
		{"JOTGUARD_HASH_CONCURRENCY", "0"},
		{"JOTGUARD_HASH_QUEUE_WAIT", "soon"},
		{"JOTGUARD_LOG_LEVEL", "loud"},
		{"JOTGUARD_LOG_FORMAT", "xml"},
		{"JOTGUARD_KEY_ROTATE_EVERY", "monthly"},
		{"JOTGUARD_JWKS_PUBLISH_AHEAD", "-1s"},
		{"JOTGUARD_SHUTDOWN_GRACE", "0"},
		{"JOTGUARD_USER_RECHECK", "-1s"},
		{"JOTGUARD_USER_RECHECK", "often"},
		{"JOTGUARD_RATE_LIMITS", "login=5/1m"},
		{"JOTGUARD_RATE_LIMITS", "credentials=5"},
		{"JOTGUARD_RATE_LIMITS", "credentials=0/1m"},
		{"JOTGUARD_SMTP_URL", "mail.example.com:25"},
		{"JOTGUARD_SMTP_URL", "http://mail.example.com"},
		{"JOTGUARD_SMTP_URL", "smtp://:25"},
		{"JOTGUARD_SMTP_URL", "smtp://mail.example.com:0"},
		{"JOTGUARD_SMTP_URL", "smtp://mail.example.com/x"},
		{"JOTGUARD_MAIL_FROM", "jotguard"},
		{"JOTGUARD_PUBLIC_URL", "id.example.com"},
		{"JOTGUARD_PUBLIC_URL", "https://id.example.com/?a=b"},
		{"JOTGUARD_KAFKA_TLS", "maybe"},
		{"JOTGUARD_KAFKA_TLS_CA_FILE", "/etc/kafka/ca.pem"}, // TLS is off
		{"JOTGUARD_KAFKA_SASL_MECHANISM", "GSSAPI"},
		{"JOTGUARD_KAFKA_SASL_USERNAME", "jotguard"}, // no mechanism
		{"JOTGUARD_KAFKA_SASL_PASSWORD_FILE", "/run/secrets/kafka"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.val, func(t *testing.T) {
			getenv := env(tt.name, tt.val)
			if tt.val == "" {
				base := env()
				getenv = func(k string) string {
					if k == tt.name {
						return ""
					}
					return base(k)
				}
			}
			_, err := Load(nil, getenv)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.name) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %s on one line", err, tt.name)
			}
		})
	}
	if _, err := Load([]string{"--access-ttl", "nope"}, env()); err == nil || !strings.Contains(err.Error(), "JOTGUARD_ACCESS_TTL") {
		t.Fatalf("bad flag value: %v", err)
	}
	if _, err := Load([]string{"--no-such-flag"}, env()); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

// Every documented variable the issuer uses is here, with a flag.
func TestVarsCoverSpec(t *testing.T) {
	spec := []string{"JOTGUARD_ISSUER", "JOTGUARD_AUDIENCE", "JOTGUARD_ISSUER_ADDR", "JOTGUARD_MONGO_URI",
		"JOTGUARD_MONGO_DB", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC",
		"JOTGUARD_ACCESS_TTL", "JOTGUARD_REFRESH_TTL", "JOTGUARD_LEEWAY", "JOTGUARD_REFRESH_REUSE_GRACE",
		"JOTGUARD_SIGNING_ALG", "JOTGUARD_KEY_ENCRYPTION_KEY", "JOTGUARD_COOKIE_SECURE", "JOTGUARD_ALLOWED_ORIGINS",
		"JOTGUARD_TRUSTED_PROXIES", "JOTGUARD_LOG_LEVEL", "JOTGUARD_LOG_FORMAT",
		"JOTGUARD_RATE_LIMITS",
		"JOTGUARD_SMTP_URL", "JOTGUARD_MAIL_FROM", "JOTGUARD_PUBLIC_URL",
		"JOTGUARD_KAFKA_TLS", "JOTGUARD_KAFKA_SASL_MECHANISM", "JOTGUARD_KAFKA_SASL_USERNAME", "JOTGUARD_KAFKA_SASL_PASSWORD"}
	names, flags := map[string]bool{}, map[string]bool{}
	for _, v := range Vars() {
		if v.Flag == "" || v.Usage == "" || names[v.Name] || flags[v.Flag] {
			t.Errorf("%s: missing or duplicate flag/usage", v.Name)
		}
		names[v.Name], flags[v.Flag] = true, true
	}
	for _, n := range spec {
		if !names[n] {
			t.Errorf("documented variable %s is missing", n)
		}
	}
	var b strings.Builder
	Usage(&b)
	for n := range names {
		if !strings.Contains(b.String(), n) {
			t.Errorf("--help lacks %s", n)
		}
	}
}

func TestKeysCommandNeedsNoRedis(t *testing.T) {
	getenv := func(k string) string {
		if k == "JOTGUARD_MONGO_URI" {
			return "mongodb://127.0.0.1:27017"
		}
		return ""
	}
	if _, err := LoadForKeys(nil, getenv); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadForKeys(nil, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "JOTGUARD_MONGO_URI") {
		t.Fatalf("keys without MongoDB: %v", err)
	}
}

// Kafka's TLS and SASL: off by default; flags and files; a problem across
// settings names the variable to fix; the password never shows.
func TestKafkaSecurity(t *testing.T) {
	c, err := Load(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.TLS || c.Kafka.Mechanism != "" {
		t.Fatalf("default Kafka security: %+v, want plaintext without SASL", c.Kafka)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load([]string{"--kafka-tls", "on", "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "jotguard"},
		env("JOTGUARD_KAFKA_SASL_PASSWORD_FILE", pw))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Kafka.TLS || c.Kafka.Mechanism != "SCRAM-SHA-512" || c.Kafka.Username != "jotguard" || c.Kafka.PasswordFile != pw {
		t.Fatalf("Kafka security: %+v", c.Kafka)
	}
	for _, tc := range []struct {
		env  []string
		name string
	}{
		{[]string{"JOTGUARD_KAFKA_TLS", "on", "JOTGUARD_KAFKA_TLS_CA_FILE", filepath.Join(dir, "missing.pem")}, "JOTGUARD_KAFKA_TLS_CA_FILE"},
		{[]string{"JOTGUARD_KAFKA_TLS", "on", "JOTGUARD_KAFKA_TLS_CERT_FILE", pw}, "JOTGUARD_KAFKA_TLS_KEY_FILE"},
		{[]string{"JOTGUARD_KAFKA_SASL_MECHANISM", "PLAIN", "JOTGUARD_KAFKA_SASL_PASSWORD", "x"}, "JOTGUARD_KAFKA_SASL_USERNAME"},
		{[]string{"JOTGUARD_KAFKA_SASL_MECHANISM", "PLAIN", "JOTGUARD_KAFKA_SASL_USERNAME", "u"}, "JOTGUARD_KAFKA_SASL_PASSWORD"},
	} {
		if _, err := Load(nil, env(tc.env...)); err == nil || !strings.HasPrefix(err.Error(), tc.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line naming %s", tc.env, err, tc.name)
		}
	}
	c, err = Load(nil, env("JOTGUARD_KAFKA_SASL_MECHANISM", "PLAIN", "JOTGUARD_KAFKA_SASL_USERNAME", "u",
		"JOTGUARD_KAFKA_SASL_PASSWORD", "hunter2-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "kafka", c.Kafka)
	fmt.Fprintf(&b, "%v %+v", c, c)
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), `"password":"[redacted]"`) {
		t.Fatalf("the Kafka password shows, or the log lacks it redacted:\n%s", b.String())
	}
}
