// Package config reads the issuer's settings: every documented JOTGUARD_*
// variable the issuer uses, each with a matching flag. A flag wins over
// the environment, the environment over the default.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jotguard/jotguard/issuer/internal/federation"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"

	"github.com/jotguard/jotguard/sdk/buildinfo"
	"github.com/jotguard/jotguard/sdk/kafkasec"
)

// Config is the issuer's configuration.
type Config struct {
	// Build is what the binary was built from, for --version and the
	// jotguard_build_info metric: set by main, not a setting.
	Build buildinfo.Info

	Issuer   string   // iss and public base URL
	Audience []string // aud of access tokens and events
	ClientID string   // client_id of tokens minted by the issuer's own API
	Addr     string   // listen address

	MongoURI string
	MongoDB  string

	RedisURL    string // redis://, rediss://, or a comma list of host:port (cluster)
	RedisPrefix string // key prefix, so tests and tenants can share a server

	KafkaBrokers    []string
	RevocationTopic string
	SETTopic        string          // per-event SETs for receivers outside jotguard; "": none
	KafkaAckTimeout time.Duration   // then the event goes to the outbox
	BatchWait       time.Duration   // how long an event waits to share a batch's signature
	Kafka           kafkasec.Config // TLS and SASL of every Kafka connection

	AccessTTL          time.Duration
	RefreshTTL         time.Duration
	Leeway             time.Duration
	RefreshGrace       time.Duration // JOTGUARD_REFRESH_REUSE_GRACE: the grace-retry window
	UserRecheck        time.Duration // a refresh trusts the session's user snapshot this long; 0: reads the user every time
	SigningAlg         string
	KeyEncryptionKey   Secret // 32 bytes, or nil (warned)
	KeyRotateEvery     time.Duration
	JWKSPublishAhead   time.Duration
	KeyReloadEvery     time.Duration
	JWKSMaxAge         time.Duration
	CookieSecure       bool
	AllowedOrigins     []string
	TrustedProxies     []*net.IPNet
	BodyLimit          int64
	PasswordMinLength  int
	PasswordMaxLength  int
	Argon2Memory       uint32 // KiB
	Argon2Time         uint32
	Argon2Threads      uint8
	HashConcurrency    int // 0: password.AutoConcurrency
	HashQueueWait      time.Duration
	RateLimitsPerClass ratelimit.Limits // JOTGUARD_RATE_LIMITS; nil: the defaults, empty: none
	DrainDelay         time.Duration
	ShutdownGrace      time.Duration
	LogLevel           slog.Level
	LogFormat          string // json or text

	SMTPURL   SecretURL // smtp:// or smtps://, maybe with a password; "" disables mail
	MailFrom  string    // From of every message
	PublicURL string    // base of the links in mail (JOTGUARD_PUBLIC_URL); default Issuer

	RequireVerifiedEmail bool          // a login of an unverified account gets 403 email_not_verified
	VerifyTokenTTL       time.Duration // lifetime of an email verification link
	ResetTokenTTL        time.Duration // lifetime of a password reset link

	AuditRetention  time.Duration // how long an audit entry is kept
	Pages           bool          // serve the account pages under /account/
	PagesTitle      string        // the product name the pages show
	PagesStylesheet []byte        // a stylesheet served after the pages' own; nil: none
	// OIDCProviders are the external OpenID providers people may sign in
	// with on the pages; none: only passwords.
	OIDCProviders []federation.ProviderConfig
	// OIDCClient talks to those providers (discovery, keys, the token
	// endpoint): set by code, not a setting, for a custom transport or
	// a test's; nil: one with a 10 s timeout.
	OIDCClient *http.Client
}

// Secret is key material; it never shows in logs.
type Secret []byte

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value {
	if len(s) == 0 {
		return slog.StringValue("unset")
	}
	return slog.StringValue("[redacted]")
}

// String hides the value from %v.
func (s Secret) String() string { return s.LogValue().String() }

// SecretURL is a URL that may carry a password; logs and %v show it
// without.
type SecretURL string

// LogValue implements slog.LogValuer.
func (s SecretURL) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String hides the password.
func (s SecretURL) String() string {
	if s == "" {
		return "unset"
	}
	u, err := url.Parse(string(s))
	if err != nil {
		return "[unparsable URL]"
	}
	return u.Redacted()
}

// checkSMTPURL checks a JOTGUARD_SMTP_URL; its errors never quote the
// value, which may hold a password.
func checkSMTPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL (want smtp://host:port or smtps://host:port)")
	case u.Scheme != "smtp" && u.Scheme != "smtps":
		return errors.New("want smtp://[user:password@]host[:port] or smtps://…")
	case u.Hostname() == "":
		return errors.New("no host")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("want no path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("bad port")
		}
	}
	return nil
}

// Var describes one setting: its variable, its flag, its default and what it
// does. Vars lists them all, in the order of the README table.
type Var struct {
	Name     string // JOTGUARD_…
	Flag     string // --flag
	Default  string // "" when none
	Required bool
	Usage    string
	set      func(*Config, string) error
}

// Vars returns the settings the issuer reads.
func Vars() []Var {
	out := make([]Var, len(vars))
	copy(out, vars)
	return out
}

var vars = []Var{
	{Name: "JOTGUARD_ISSUER", Flag: "issuer", Default: "http://127.0.0.1:8080", Usage: "the iss value and the issuer's public base URL",
		set: func(c *Config, s string) error {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("want an http(s) URL, got %q", s)
			}
			c.Issuer = strings.TrimRight(s, "/")
			return nil
		}},
	{Name: "JOTGUARD_AUDIENCE", Flag: "audience", Default: "jotguard", Usage: "aud of access tokens and revocation events (comma list)",
		set: func(c *Config, s string) error {
			c.Audience = list(s)
			if len(c.Audience) == 0 {
				return errors.New("must name at least one audience")
			}
			return nil
		}},
	{Name: "JOTGUARD_CLIENT_ID", Flag: "client-id", Default: "jotguard", Usage: "client_id of the tokens the issuer's API mints",
		set: func(c *Config, s string) error { c.ClientID = s; return nonEmpty(s) }},
	{Name: "JOTGUARD_ISSUER_ADDR", Flag: "addr", Default: "127.0.0.1:8080", Usage: "listen address",
		set: func(c *Config, s string) error {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			c.Addr = s
			return nil
		}},
	{Name: "JOTGUARD_MONGO_URI", Flag: "mongo-uri", Required: true, Usage: "MongoDB connection string (users, signing keys, event outbox)",
		set: func(c *Config, s string) error {
			if !strings.HasPrefix(s, "mongodb://") && !strings.HasPrefix(s, "mongodb+srv://") {
				return errors.New("want a mongodb:// or mongodb+srv:// URI")
			}
			c.MongoURI = s
			return nil
		}},
	{Name: "JOTGUARD_MONGO_DB", Flag: "mongo-db", Default: "jotguard", Usage: "MongoDB database name",
		set: func(c *Config, s string) error { c.MongoDB = s; return nonEmpty(s) }},
	{Name: "JOTGUARD_REDIS_URL", Flag: "redis-url", Required: true, Usage: "Redis for sessions: redis:// or rediss:// URL, or a comma list of host:port for a cluster",
		set: func(c *Config, s string) error {
			if strings.Contains(s, "://") {
				if !strings.HasPrefix(s, "redis://") && !strings.HasPrefix(s, "rediss://") {
					return errors.New("want redis://, rediss:// or host:port,…")
				}
			} else {
				for _, a := range list(s) {
					if _, _, err := net.SplitHostPort(a); err != nil {
						return fmt.Errorf("cluster address %q: want host:port", a)
					}
				}
			}
			c.RedisURL = s
			return nil
		}},
	{Name: "JOTGUARD_REDIS_PREFIX", Flag: "redis-prefix", Default: "jg", Usage: "prefix of every Redis key",
		set: func(c *Config, s string) error { c.RedisPrefix = s; return nonEmpty(s) }},
	{Name: "JOTGUARD_KAFKA_BROKERS", Flag: "kafka-brokers", Usage: "Kafka bootstrap brokers (comma list); empty: revocation events wait in the MongoDB outbox",
		set: func(c *Config, s string) error { c.KafkaBrokers = list(s); return nil }},
	{Name: "JOTGUARD_REVOCATION_TOPIC", Flag: "revocation-topic", Default: "jotguard.revocations", Usage: "Kafka topic of revocation events",
		set: func(c *Config, s string) error { c.RevocationTopic = s; return nonEmpty(s) }},
	{Name: "JOTGUARD_SET_TOPIC", Flag: "set-topic", Usage: "Kafka topic of one signed SET per revocation (RFC 8417, CAEP session-revoked), for receivers outside jotguard; empty: none",
		set: func(c *Config, s string) error { c.SETTopic = s; return nil }},
	{Name: "JOTGUARD_REVOCATION_BATCH_WAIT", Flag: "revocation-batch-wait", Default: "20ms", Usage: "longest a revocation event waits for others to share its batch, whose one signature every verifier checks",
		set: duration(func(c *Config) *time.Duration { return &c.BatchWait })},
	{Name: "JOTGUARD_KAFKA_ACK_TIMEOUT", Flag: "kafka-ack-timeout", Default: "2s", Usage: "how long a logout waits for Kafka before the event goes to the outbox",
		set: duration(func(c *Config) *time.Duration { return &c.KafkaAckTimeout })},
	// JOTGUARD_KAFKA_TLS… and JOTGUARD_KAFKA_SASL_… come here: see init.
	{Name: "JOTGUARD_ACCESS_TTL", Flag: "access-ttl", Default: "5m", Usage: "access token lifetime",
		set: duration(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{Name: "JOTGUARD_REFRESH_TTL", Flag: "refresh-ttl", Default: "672h", Usage: "refresh token and session lifetime",
		set: duration(func(c *Config) *time.Duration { return &c.RefreshTTL })},
	{Name: "JOTGUARD_LEEWAY", Flag: "leeway", Default: "30s", Usage: "clock leeway of verifiers (keeps retired keys this much longer)",
		set: duration(func(c *Config) *time.Duration { return &c.Leeway })},
	{Name: "JOTGUARD_REFRESH_REUSE_GRACE", Flag: "refresh-reuse-grace", Default: "10s", Usage: "window in which the just-rotated refresh token returns the same successor",
		set: duration(func(c *Config) *time.Duration { return &c.RefreshGrace })},
	{Name: "JOTGUARD_USER_RECHECK", Flag: "user-recheck", Default: "1m", Usage: "how long a refresh trusts the session's copy of the user before reading MongoDB again; 0: every refresh",
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("want 0 or a positive duration like 30s or 1m, got %q", s)
			}
			c.UserRecheck = d
			return nil
		}},
	{Name: "JOTGUARD_SIGNING_ALG", Flag: "signing-alg", Default: "ES256", Usage: "ES256, EdDSA or RS256",
		set: func(c *Config, s string) error {
			switch s {
			case "ES256", "EdDSA", "RS256":
				c.SigningAlg = s
				return nil
			}
			return fmt.Errorf("want ES256, EdDSA or RS256, got %q", s)
		}},
	{Name: "JOTGUARD_KEY_ENCRYPTION_KEY", Flag: "key-encryption-key", Usage: "32 bytes (base64 or hex) that encrypt private keys at rest (AES-256-GCM); unset: stored in the clear, with a warning",
		set: func(c *Config, s string) error {
			k, err := parseKey(s)
			if err != nil {
				return err
			}
			c.KeyEncryptionKey = k
			return nil
		}},
	{Name: "JOTGUARD_KEY_ROTATE_EVERY", Flag: "key-rotate-every", Default: "720h", Usage: "automatic signing key rotation interval",
		set: duration(func(c *Config) *time.Duration { return &c.KeyRotateEvery })},
	{Name: "JOTGUARD_JWKS_PUBLISH_AHEAD", Flag: "jwks-publish-ahead", Default: "15m", Usage: "how long a new key is in the JWKS before it signs (≥ the verifiers' JWKS refresh interval)",
		set: duration(func(c *Config) *time.Duration { return &c.JWKSPublishAhead })},
	{Name: "JOTGUARD_KEY_RELOAD_EVERY", Flag: "key-reload-every", Default: "1m", Usage: "how often each replica reloads the key set from MongoDB",
		set: duration(func(c *Config) *time.Duration { return &c.KeyReloadEvery })},
	{Name: "JOTGUARD_JWKS_MAX_AGE", Flag: "jwks-max-age", Default: "5m", Usage: "Cache-Control max-age of the JWKS",
		set: duration(func(c *Config) *time.Duration { return &c.JWKSMaxAge })},
	{Name: "JOTGUARD_COOKIE_SECURE", Flag: "cookie-secure", Default: "true", Usage: "Secure attribute on the refresh cookie (false only for plain-http development)",
		set: func(c *Config, s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", s)
			}
			c.CookieSecure = b
			return nil
		}},
	{Name: "JOTGUARD_ALLOWED_ORIGINS", Flag: "allowed-origins", Usage: "origins allowed to send cookie-authenticated POST/DELETE (comma list)",
		set: func(c *Config, s string) error {
			c.AllowedOrigins = nil
			for _, o := range list(s) {
				u, err := url.Parse(o)
				if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
					return fmt.Errorf("origin %q: want scheme://host[:port]", o)
				}
				c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
			}
			return nil
		}},
	{Name: "JOTGUARD_TRUSTED_PROXIES", Flag: "trusted-proxies", Usage: "CIDRs of proxies whose X-Forwarded-For is believed (comma list)",
		set: func(c *Config, s string) error {
			c.TrustedProxies = nil
			for _, p := range list(s) {
				if !strings.Contains(p, "/") {
					if ip := net.ParseIP(p); ip != nil && ip.To4() != nil {
						p += "/32"
					} else {
						p += "/128"
					}
				}
				_, n, err := net.ParseCIDR(p)
				if err != nil {
					return fmt.Errorf("%q is not a CIDR", p)
				}
				c.TrustedProxies = append(c.TrustedProxies, n)
			}
			return nil
		}},
	{Name: "JOTGUARD_BODY_LIMIT", Flag: "body-limit", Default: "65536", Usage: "largest request body in bytes (413 above)",
		set: func(c *Config, s string) error {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1024 {
				return fmt.Errorf("want a number of bytes ≥ 1024, got %q", s)
			}
			c.BodyLimit = n
			return nil
		}},
	{Name: "JOTGUARD_PASSWORD_MIN_LENGTH", Flag: "password-min-length", Default: "12", Usage: "shortest password, in characters after NFKC",
		set: intIn(func(c *Config) *int { return &c.PasswordMinLength }, 8, 128)},
	{Name: "JOTGUARD_PASSWORD_MAX_LENGTH", Flag: "password-max-length", Default: "128", Usage: "longest password, in characters after NFKC",
		set: intIn(func(c *Config) *int { return &c.PasswordMaxLength }, 8, 1024)},
	{Name: "JOTGUARD_ARGON2_MEMORY", Flag: "argon2-memory", Default: "19456", Usage: "argon2id memory in KiB",
		set: func(c *Config, s string) error {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n < 8 {
				return fmt.Errorf("want KiB ≥ 8, got %q", s)
			}
			c.Argon2Memory = uint32(n)
			return nil
		}},
	{Name: "JOTGUARD_ARGON2_TIME", Flag: "argon2-time", Default: "2", Usage: "argon2id iterations",
		set: func(c *Config, s string) error {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n < 1 {
				return fmt.Errorf("want a count ≥ 1, got %q", s)
			}
			c.Argon2Time = uint32(n)
			return nil
		}},
	{Name: "JOTGUARD_ARGON2_THREADS", Flag: "argon2-threads", Default: "1", Usage: "argon2id parallelism",
		set: func(c *Config, s string) error {
			n, err := strconv.ParseUint(s, 10, 8)
			if err != nil || n < 1 {
				return fmt.Errorf("want 1..255, got %q", s)
			}
			c.Argon2Threads = uint8(n)
			return nil
		}},
	{Name: "JOTGUARD_HASH_CONCURRENCY", Flag: "hash-concurrency", Default: "auto", Usage: "password hashes computed at once; auto: one per core, no more than the memory limit (cgroup or GOMEMLIMIT) holds",
		set: func(c *Config, s string) error {
			switch s {
			case "auto":
				c.HashConcurrency = 0
				return nil
			case "GOMAXPROCS":
				c.HashConcurrency = runtime.GOMAXPROCS(0)
				return nil
			}
			return intIn(func(c *Config) *int { return &c.HashConcurrency }, 1, 4096)(c, s)
		}},
	{Name: "JOTGUARD_HASH_QUEUE_WAIT", Flag: "hash-queue-wait", Default: "2s", Usage: "how long a request waits for a hashing slot before 503",
		set: duration(func(c *Config) *time.Duration { return &c.HashQueueWait })},
	{Name: "JOTGUARD_RATE_LIMITS", Flag: "rate-limits", Default: ratelimit.DefaultSpec,
		Usage: "rate limits shared through Redis: comma list of class=N/period (or class=off) for credentials and refresh (per client network), account and account-network (failed password checks), revoke (per subject) and mail (per recipient); unnamed classes keep their defaults; off: none (docs/operations.md)",
		set: func(c *Config, s string) error {
			l, err := ratelimit.ParseLimits(s)
			if err != nil {
				return err
			}
			c.RateLimitsPerClass = l
			return nil
		}},
	{Name: "JOTGUARD_SMTP_URL", Flag: "smtp-url", Usage: "SMTP server for mail: smtp://[user:password@]host[:port] (STARTTLS when offered, port 587) or smtps://… (TLS, port 465); unset: mail is disabled, with a warning",
		set: func(c *Config, s string) error {
			if err := checkSMTPURL(s); err != nil {
				return err
			}
			c.SMTPURL = SecretURL(s)
			return nil
		}},
	{Name: "JOTGUARD_MAIL_FROM", Flag: "mail-from", Default: "jotguard <no-reply@localhost>", Usage: "sender of mail: an address, or a display name and the address in angle brackets",
		set: func(c *Config, s string) error {
			if _, err := mail.ParseAddress(s); err != nil {
				return fmt.Errorf("want an address like no-reply@example.com or Name <no-reply@example.com>, got %q", s)
			}
			c.MailFrom = s
			return nil
		}},
	{Name: "JOTGUARD_PUBLIC_URL", Flag: "public-url", Usage: "base URL of the links in mail (default $JOTGUARD_ISSUER)",
		set: func(c *Config, s string) error {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("want an http(s) URL without query, got %q", s)
			}
			c.PublicURL = strings.TrimRight(s, "/")
			return nil
		}},
	{Name: "JOTGUARD_REQUIRE_VERIFIED_EMAIL", Flag: "require-verified-email", Default: "false", Usage: "refuse the login of an account whose email address is not verified (403 email_not_verified)",
		set: func(c *Config, s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", s)
			}
			c.RequireVerifiedEmail = b
			return nil
		}},
	{Name: "JOTGUARD_VERIFY_TOKEN_TTL", Flag: "verify-token-ttl", Default: "24h", Usage: "how long an email verification link works",
		set: duration(func(c *Config) *time.Duration { return &c.VerifyTokenTTL })},
	{Name: "JOTGUARD_RESET_TOKEN_TTL", Flag: "reset-token-ttl", Default: "1h", Usage: "how long a password reset link works",
		set: duration(func(c *Config) *time.Duration { return &c.ResetTokenTTL })},
	{Name: "JOTGUARD_AUDIT_RETENTION", Flag: "audit-retention", Default: "2160h", Usage: "how long an audit log entry is kept (90 days by default)",
		set: duration(func(c *Config) *time.Duration { return &c.AuditRetention })},
	{Name: "JOTGUARD_PAGES", Flag: "pages", Default: "on", Usage: "on: serve the pages for people under /account/ (sign in, register, the mailed links' pages, the account page); off: serve your own at JOTGUARD_PUBLIC_URL",
		set: func(c *Config, s string) error {
			switch s {
			case "on":
				c.Pages = true
			case "off":
				c.Pages = false
			default:
				return fmt.Errorf("want on or off, got %q", s)
			}
			return nil
		}},
	{Name: "JOTGUARD_PAGES_TITLE", Flag: "pages-title", Default: "jotguard", Usage: "the product name the account pages show",
		set: func(c *Config, s string) error {
			if len(s) > 100 || strings.ContainsFunc(s, unicode.IsControl) {
				return errors.New("want at most 100 characters, without control characters")
			}
			c.PagesTitle = s
			return nil
		}},
	{Name: "JOTGUARD_PAGES_STYLESHEET", Flag: "pages-stylesheet", Usage: "a CSS file served after the account pages' own stylesheet, to brand them (read at start)",
		set: func(c *Config, s string) error {
			b, err := readSmallFile(s, 256<<10)
			if err != nil {
				return err
			}
			c.PagesStylesheet = b
			return nil
		}},
	{Name: "JOTGUARD_OIDC_PROVIDERS", Flag: "oidc-providers", Usage: "external OpenID providers to sign in with on the account pages: a JSON list of {\"name\", \"issuer\", \"client_id\", \"client_secret\" or \"client_secret_file\", \"display_name\", \"scopes\"}, or the path of a file holding it; the redirect URI to register is $JOTGUARD_PUBLIC_URL/oauth/NAME/callback (see docs/federation.md); needs JOTGUARD_KEY_ENCRYPTION_KEY",
		set: func(c *Config, s string) error {
			p, err := parseOIDCProviders(s)
			c.OIDCProviders = p
			return err
		}},
	{Name: "JOTGUARD_DRAIN_DELAY", Flag: "drain-delay", Default: "5s", Usage: "after SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes (load balancers need a few seconds to stop sending)",
		set: durationOrZero(func(c *Config) *time.Duration { return &c.DrainDelay })},
	{Name: "JOTGUARD_SHUTDOWN_GRACE", Flag: "shutdown-grace", Default: "15s", Usage: "how long in-flight requests may finish after the drain delay",
		set: duration(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
	{Name: "JOTGUARD_LOG_LEVEL", Flag: "log-level", Default: "info", Usage: "debug, info, warn or error",
		set: func(c *Config, s string) error {
			if err := c.LogLevel.UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("want debug, info, warn or error, got %q", s)
			}
			return nil
		}},
	{Name: "JOTGUARD_LOG_FORMAT", Flag: "log-format", Default: "json", Usage: "json, or text for a terminal",
		set: func(c *Config, s string) error {
			if s != "json" && s != "text" {
				return fmt.Errorf("want json or text, got %q", s)
			}
			c.LogFormat = s
			return nil
		}},
}

// init puts the Kafka security settings, which every binary shares,
// after JOTGUARD_KAFKA_ACK_TIMEOUT.
func init() {
	at := slices.IndexFunc(vars, func(v Var) bool { return v.Name == "JOTGUARD_KAFKA_ACK_TIMEOUT" }) + 1
	var kafka []Var
	for _, s := range kafkasec.Settings() {
		kafka = append(kafka, Var{Name: s.Name, Flag: s.Flag, Default: s.Default, Usage: s.Usage,
			set: func(c *Config, v string) error { return s.Set(&c.Kafka, v) }})
	}
	vars = slices.Insert(vars, at, kafka...)
}

// Load reads the settings from args (flags) and getenv. --help returns
// flag.ErrHelp; any other error is one line naming the variable.
func Load(args []string, getenv func(string) string) (Config, error) {
	return load(args, getenv, func(v Var) bool { return v.Required })
}

// LoadForKeys is Load for `issuer keys rotate|list`, which need MongoDB
// but not Redis.
func LoadForKeys(args []string, getenv func(string) string) (Config, error) {
	return load(args, getenv, func(v Var) bool { return v.Name == "JOTGUARD_MONGO_URI" })
}

// LoadForCommand is Load for `issuer users …` and `issuer clients …`,
// which need MongoDB and Redis (the sessions a role change updates) and
// publish revocation events like the server.
func LoadForCommand(args []string, getenv func(string) string) (Config, error) {
	return load(args, getenv, func(v Var) bool { return v.Name == "JOTGUARD_MONGO_URI" || v.Name == "JOTGUARD_REDIS_URL" })
}

func load(args []string, getenv func(string) string, required func(Var) bool) (Config, error) {
	fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromFlag := map[string]string{}
	for _, v := range vars {
		name := v.Name
		fs.Func(v.Flag, v.Usage, func(s string) error { fromFlag[name] = s; return nil })
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, flag.ErrHelp
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var c Config
	for _, v := range vars {
		val, ok := fromFlag[v.Name]
		if !ok {
			val = strings.TrimSpace(getenv(v.Name))
		}
		if val == "" {
			if required(v) {
				return Config{}, fmt.Errorf("%s is required (or --%s)", v.Name, v.Flag)
			}
			val = v.Default
		}
		if val == "" {
			continue
		}
		if err := v.set(&c, val); err != nil {
			return Config{}, fmt.Errorf("%s: %w", v.Name, err)
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = c.Issuer
	}
	if err := c.Kafka.Check(); err != nil { // names the variable; reads the files
		return Config{}, err
	}
	switch {
	case c.PasswordMaxLength < c.PasswordMinLength:
		return Config{}, fmt.Errorf("JOTGUARD_PASSWORD_MAX_LENGTH: %d is below JOTGUARD_PASSWORD_MIN_LENGTH %d", c.PasswordMaxLength, c.PasswordMinLength)
	case c.RefreshGrace >= c.RefreshTTL:
		return Config{}, errors.New("JOTGUARD_REFRESH_REUSE_GRACE: must be shorter than JOTGUARD_REFRESH_TTL")
	case c.BatchWait >= c.KafkaAckTimeout:
		return Config{}, errors.New("JOTGUARD_REVOCATION_BATCH_WAIT: must be shorter than JOTGUARD_KAFKA_ACK_TIMEOUT")
	case len(c.OIDCProviders) > 0 && !c.Pages:
		return Config{}, errors.New("JOTGUARD_OIDC_PROVIDERS: the sign-in through a provider lands on the account pages: needs JOTGUARD_PAGES=on")
	case len(c.OIDCProviders) > 0 && len(c.KeyEncryptionKey) == 0:
		return Config{}, errors.New("JOTGUARD_OIDC_PROVIDERS: needs JOTGUARD_KEY_ENCRYPTION_KEY, which seals the sign-in's browser cookies alike on every replica")
	}
	return c, nil
}

// Usage writes the flags and their variables, for --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: issuer [flags]            serve (default)")
	fmt.Fprintln(w, "       issuer keys rotate [flags] add a signing key now")
	fmt.Fprintln(w, "       issuer keys list [flags]   list the signing keys")
	fmt.Fprintln(w, "       issuer users create --email E [--roles a,b] [flags]")
	fmt.Fprintln(w, "                                  create a user (password on stdin, address verified)")
	fmt.Fprintln(w, "       issuer users roles E a,b [flags]")
	fmt.Fprintln(w, "                                  replace the roles of the user of address E")
	fmt.Fprintln(w, "       issuer clients create --name N [--roles a,b] [flags]")
	fmt.Fprintln(w, "                                  create a service account; prints its id and secret (shown once)")
	fmt.Fprintln(w, "       issuer clients list [flags] list the service accounts")
	fmt.Fprintln(w, "       issuer clients delete ID [flags]")
	fmt.Fprintln(w, "                                  delete a service account; its tokens are revoked everywhere")
	fmt.Fprintln(w, "\nEvery flag has an environment variable; the flag wins.")
	for _, v := range vars {
		def := v.Default
		switch {
		case v.Required:
			def = "required"
		case def == "":
			def = "none"
		}
		fmt.Fprintf(w, "  --%s (%s, default %s)\n      %s\n", v.Flag, v.Name, def, v.Usage)
	}
	fmt.Fprintln(w, "\nTracing (OpenTelemetry) is off unless the standard OTEL_* variables ask for it:")
	fmt.Fprintln(w, "OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER and the rest (docs/operations.md, Tracing).")
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// durationOrZero is duration that also takes 0 (off).
func durationOrZero(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 5s, or 0, got %q", s)
		}
		*field(c) = d
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 30s or 5m, got %q", s)
		}
		*field(c) = d
		return nil
	}
}

func intIn(field func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want an integer in %d..%d, got %q", lo, hi, s)
		}
		*field(c) = n
		return nil
	}
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case err != nil:
		return nil, err
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("%s: larger than %d KiB", path, limit>>10)
	}
	return b, nil
}

func parseKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("want 32 bytes as base64 or 64 hex digits")
}
