// Package config reads the verifier's settings: every documented JOTGUARD_*
// variable the verifier uses, each with a matching flag. A flag wins over
// the environment, the environment over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jotguard/jotguard/verifier/internal/reqpath"

	"github.com/jotguard/jotguard/sdk/buildinfo"
	"github.com/jotguard/jotguard/sdk/kafkasec"
)

// Config is the verifier's configuration.
type Config struct {
	// Build is what the binary was built from, for --version and the
	// jotguard_build_info metric: set by main, not a setting.
	Build buildinfo.Info

	Issuer   string   // exact iss, and the base of the default JWKS URL
	Audience []string // aud must hold one of these
	JWKSURL  string   // "" : Issuer + /.well-known/jwks.json
	Addr     string   // listen address
	// AdminAddr is the listener of /healthz, /readyz and /metrics; "" : on
	// Addr in check-only mode, nowhere in proxy mode.
	AdminAddr string

	KafkaBrokers      []string // empty: no revocations (warned)
	RevocationTopic   string
	Kafka             kafkasec.Config // TLS and SASL of the revocation feed's connections
	AccessTTL         time.Duration   // max access-token lifetime: replay = AccessTTL + Leeway
	Leeway            time.Duration
	FailClosed        bool          // JOTGUARD_REVOCATION_FAILURE=closed
	MaxStaleness      time.Duration // feed unreachable this long: the failure policy applies
	Upstream          *url.URL      // nil: check endpoints only
	PublicPaths       []string      // path prefixes that pass without a token (proxy mode)
	BodyTimeout       time.Duration // proxy mode: longest wait for the next bytes of a request body
	RequiredRoles     []string      // a token needs one of these (403 otherwise); empty: none
	CacheSize         int           // verified tokens cached; 0: no cache (never negative)
	DrainDelay        time.Duration // after SIGTERM: readiness off, still serving
	ShutdownGrace     time.Duration
	LogLevel          slog.Level
	LogFormat         string // json or text
	RevocationFailure string // "open" or "closed", as configured
}

// Var describes one setting: its variable, its flag, its default and what it
// does.
type Var struct {
	Name    string // JOTGUARD_…
	Flag    string // --flag
	Default string // "" when none
	Usage   string
	set     func(*Config, string) error
}

// Vars returns the settings the verifier reads, for docs and --help.
func Vars() []Var { return append([]Var(nil), vars...) }

var vars = []Var{
	{Name: "JOTGUARD_ISSUER", Flag: "issuer", Default: "http://127.0.0.1:8080", Usage: "the iss tokens must carry, and the issuer's base URL",
		set: func(c *Config, s string) error {
			if err := httpURL(s); err != nil {
				return err
			}
			c.Issuer = strings.TrimRight(s, "/")
			return nil
		}},
	{Name: "JOTGUARD_AUDIENCE", Flag: "audience", Default: "jotguard", Usage: "accepted aud values (comma list; a token needs one)",
		set: func(c *Config, s string) error {
			c.Audience = list(s)
			if len(c.Audience) == 0 {
				return errors.New("must name at least one audience")
			}
			return nil
		}},
	{Name: "JOTGUARD_JWKS_URL", Flag: "jwks-url", Default: "", Usage: "the issuer's JWKS (default $JOTGUARD_ISSUER/.well-known/jwks.json)",
		set: func(c *Config, s string) error {
			if err := httpURL(s); err != nil {
				return err
			}
			c.JWKSURL = s
			return nil
		}},
	{Name: "JOTGUARD_VERIFIER_ADDR", Flag: "addr", Default: "127.0.0.1:8081", Usage: "listen address",
		set: func(c *Config, s string) error {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			c.Addr = s
			return nil
		}},
	{Name: "JOTGUARD_ADMIN_ADDR", Flag: "admin-addr", Usage: "listen address of /healthz, /readyz and /metrics, apart from the main port; empty: on the main port in check-only mode, not served in proxy mode (every path there is proxied)",
		set: func(c *Config, s string) error {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			c.AdminAddr = s
			return nil
		}},
	{Name: "JOTGUARD_KAFKA_BROKERS", Flag: "kafka-brokers", Usage: "Kafka bootstrap brokers of the revocation feed (comma list); empty: NO revocation checks (warned)",
		set: func(c *Config, s string) error {
			c.KafkaBrokers = list(s)
			for _, b := range c.KafkaBrokers {
				if _, _, err := net.SplitHostPort(b); err != nil {
					return fmt.Errorf("broker %q: want host:port", b)
				}
			}
			return nil
		}},
	{Name: "JOTGUARD_REVOCATION_TOPIC", Flag: "revocation-topic", Default: "jotguard.revocations", Usage: "Kafka topic of revocation events",
		set: func(c *Config, s string) error { c.RevocationTopic = s; return nonEmpty(s) }},
	// JOTGUARD_KAFKA_TLS… and JOTGUARD_KAFKA_SASL_… come here: see init.
	{Name: "JOTGUARD_ACCESS_TTL", Flag: "access-ttl", Default: "5m", Usage: "longest access-token lifetime (exp - iat) accepted beyond the leeway: set it to the issuer's JOTGUARD_ACCESS_TTL or more; revocations are replayed and kept for this plus twice the leeway",
		set: duration(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{Name: "JOTGUARD_LEEWAY", Flag: "leeway", Default: "30s", Usage: "clock leeway on exp, iat and nbf",
		set: duration(func(c *Config) *time.Duration { return &c.Leeway })},
	{Name: "JOTGUARD_REVOCATION_FAILURE", Flag: "revocation-failure", Default: "open", Usage: "when the feed is unreachable longer than the staleness bound: open (verify by signature and expiry, report degraded) or closed (answer 503)",
		set: func(c *Config, s string) error {
			switch s {
			case "open", "closed":
				c.RevocationFailure, c.FailClosed = s, s == "closed"
				return nil
			}
			return fmt.Errorf("want open or closed, got %q", s)
		}},
	{Name: "JOTGUARD_REVOCATION_MAX_STALENESS", Flag: "revocation-max-staleness", Default: "30s", Usage: "how long the revocation feed may be unreachable before the failure policy applies",
		set: duration(func(c *Config) *time.Duration { return &c.MaxStaleness })},
	{Name: "JOTGUARD_UPSTREAM", Flag: "upstream", Usage: "reverse-proxy mode: check every request, then proxy it here (http(s) URL); empty: check endpoints only",
		set: func(c *Config, s string) error {
			if err := httpURL(s); err != nil {
				return err
			}
			c.Upstream, _ = url.Parse(s)
			return nil
		}},
	{Name: "JOTGUARD_PUBLIC_PATHS", Flag: "public-paths", Usage: "proxy mode: path prefixes that pass without a token (comma list, each starting with /, matched on whole segments of the path as sent)",
		set: func(c *Config, s string) error {
			c.PublicPaths = list(s)
			for _, p := range c.PublicPaths {
				if !strings.HasPrefix(p, "/") {
					return fmt.Errorf("%q does not start with /", p)
				}
				if err := reqpath.Check(p); err != nil {
					return fmt.Errorf("%q: %w", p, err)
				}
			}
			return nil
		}},
	{Name: "JOTGUARD_PROXY_BODY_TIMEOUT", Flag: "proxy-body-timeout", Default: "30s", Usage: "proxy mode: the longest wait for the next bytes of a request body; a body that stalls longer is cut (408), an upload that keeps sending is not",
		set: duration(func(c *Config) *time.Duration { return &c.BodyTimeout })},
	{Name: "JOTGUARD_REQUIRED_ROLES", Flag: "required-roles", Usage: "a token must hold one of these roles, else 403 insufficient_scope (comma list); a check request's ?roles= overrides it",
		set: func(c *Config, s string) error { c.RequiredRoles = list(s); return nil }},
	{Name: "JOTGUARD_VERIFY_CACHE_SIZE", Flag: "verify-cache-size", Default: "10000", Usage: "how many verified tokens to cache, so a repeated token skips the signature check (revocations and expiry are still checked); 0: no cache",
		set: func(c *Config, s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return fmt.Errorf("want a number of tokens, 0 or more (0: no cache), got %q", s)
			}
			c.CacheSize = n
			return nil
		}},
	{Name: "JOTGUARD_DRAIN_DELAY", Flag: "drain-delay", Default: "5s", Usage: "after SIGTERM, how long /readyz answers 503 while requests are still served, before the listeners close (load balancers need a few seconds to stop sending)",
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("want a duration like 5s, or 0, got %q", s)
			}
			c.DrainDelay = d
			return nil
		}},
	{Name: "JOTGUARD_SHUTDOWN_GRACE", Flag: "shutdown-grace", Default: "10s", Usage: "how long in-flight requests may finish after the drain delay",
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
// after JOTGUARD_REVOCATION_TOPIC.
func init() {
	at := slices.IndexFunc(vars, func(v Var) bool { return v.Name == "JOTGUARD_REVOCATION_TOPIC" }) + 1
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
	fs := flag.NewFlagSet("verifier", flag.ContinueOnError)
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
			val = v.Default
		}
		if val == "" {
			continue
		}
		if err := v.set(&c, val); err != nil {
			return Config{}, fmt.Errorf("%s: %w", v.Name, err)
		}
	}
	if c.AdminAddr != "" && c.AdminAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
		return Config{}, fmt.Errorf("JOTGUARD_ADMIN_ADDR: %s is the main listen address (JOTGUARD_VERIFIER_ADDR); use another port", c.AdminAddr)
	}
	if err := c.Kafka.Check(); err != nil { // names the variable; reads the files
		return Config{}, err
	}
	if len(c.PublicPaths) > 0 && c.Upstream == nil {
		return Config{}, errors.New("JOTGUARD_PUBLIC_PATHS: only used in proxy mode, but JOTGUARD_UPSTREAM is not set")
	}
	return c, nil
}

// Usage writes the flags and their variables, for --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: verifier [flags]")
	fmt.Fprintln(w, "\nServes the auth-check endpoints /authz/forward-auth, /authz/auth-request and")
	fmt.Fprintln(w, "/authz/ext-authz/, or with --upstream a checking reverse proxy of every path,")
	fmt.Fprintln(w, "until SIGINT or SIGTERM. /healthz, /readyz and /metrics are on --admin-addr when")
	fmt.Fprintln(w, "set, else on the main port in check-only mode and nowhere in proxy mode.")
	fmt.Fprintln(w, "\nEvery flag has an environment variable; the flag wins.")
	for _, v := range vars {
		def := v.Default
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  --%s (%s, default %s)\n      %s\n", v.Flag, v.Name, def, v.Usage)
	}
	fmt.Fprintln(w, "\nTracing (OpenTelemetry) is off unless the standard OTEL_* variables ask for it:")
	fmt.Fprintln(w, "OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER and the rest (docs/operations.md, Tracing).")
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, got %q", s)
	}
	return nil
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
