// Package demo is the upstream service of `make run`: a small JSON API that
// sits behind the verifier sidecar and still verifies every token itself
// with the sdk middleware (defence in depth), including revocations read
// from Kafka with sdk/kafkafeed.
package demo

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkasec"
)

// Config is the demo's configuration.
type Config struct {
	Addr            string
	Issuer          string
	Audience        []string
	JWKSURL         string
	KafkaBrokers    []string
	RevocationTopic string
	Kafka           kafkasec.Config // TLS and SASL of the feed's connections
	AccessTTL       time.Duration
	Leeway          time.Duration
	FailClosed      bool
	MaxStaleness    time.Duration
	LogLevel        slog.Level
	LogFormat       string
}

// Var is one setting: a JOTGUARD_* variable and its flag.
type Var struct {
	Name, Flag, Default, Usage string
	set                        func(*Config, string) error
}

// Vars returns the settings the demo reads.
func Vars() []Var { return append([]Var(nil), vars...) }

var vars = []Var{
	{"JOTGUARD_DEMO_ADDR", "addr", "127.0.0.1:8090", "listen address of the demo upstream",
		func(c *Config, s string) error {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("want host:port: %w", err)
			}
			c.Addr = s
			return nil
		}},
	{"JOTGUARD_ISSUER", "issuer", "http://127.0.0.1:8080", "the exact iss of accepted tokens",
		func(c *Config, s string) error {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("want an http(s) URL, got %q", s)
			}
			c.Issuer = strings.TrimRight(s, "/")
			return nil
		}},
	{"JOTGUARD_AUDIENCE", "audience", "jotguard", "accepted aud values (comma list)",
		func(c *Config, s string) error {
			if c.Audience = list(s); len(c.Audience) == 0 {
				return errors.New("must name at least one audience")
			}
			return nil
		}},
	{"JOTGUARD_JWKS_URL", "jwks-url", "", "JWKS URL (default $JOTGUARD_ISSUER/.well-known/jwks.json)",
		func(c *Config, s string) error {
			if u, err := url.Parse(s); err != nil || u.Host == "" {
				return fmt.Errorf("want a URL, got %q", s)
			}
			c.JWKSURL = s
			return nil
		}},
	{"JOTGUARD_KAFKA_BROKERS", "kafka-brokers", "", "Kafka brokers (comma list) of the revocation feed; empty: signature and expiry only, with a warning",
		func(c *Config, s string) error { c.KafkaBrokers = list(s); return nil }},
	{"JOTGUARD_REVOCATION_TOPIC", "revocation-topic", "jotguard.revocations", "Kafka topic of revocation events",
		func(c *Config, s string) error { c.RevocationTopic = s; return nil }},
	{"JOTGUARD_ACCESS_TTL", "access-ttl", "5m", "longest access-token lifetime accepted (set it to the issuer's); sizes the revocation replay",
		durationVar(func(c *Config) *time.Duration { return &c.AccessTTL })},
	{"JOTGUARD_LEEWAY", "leeway", "30s", "clock leeway",
		durationVar(func(c *Config) *time.Duration { return &c.Leeway })},
	{"JOTGUARD_REVOCATION_FAILURE", "revocation-failure", "open", "open or closed: answer when the feed is stale",
		func(c *Config, s string) error {
			switch s {
			case "open", "closed":
				c.FailClosed = s == "closed"
				return nil
			}
			return fmt.Errorf("want open or closed, got %q", s)
		}},
	{"JOTGUARD_REVOCATION_MAX_STALENESS", "revocation-max-staleness", "30s", "how long the feed may lose the brokers before it is stale",
		durationVar(func(c *Config) *time.Duration { return &c.MaxStaleness })},
	{"JOTGUARD_LOG_LEVEL", "log-level", "info", "debug, info, warn or error",
		func(c *Config, s string) error {
			if err := c.LogLevel.UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("want debug, info, warn or error, got %q", s)
			}
			return nil
		}},
	{"JOTGUARD_LOG_FORMAT", "log-format", "json", "json, or text for a terminal",
		func(c *Config, s string) error {
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
		kafka = append(kafka, Var{s.Name, s.Flag, s.Default, s.Usage,
			func(c *Config, v string) error { return s.Set(&c.Kafka, v) }})
	}
	vars = slices.Insert(vars, at, kafka...)
}

// Load reads flags, then the environment, then the defaults. --help returns
// flag.ErrHelp; any other error is one line naming the variable.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromFlag := map[string]string{}
	for _, v := range vars {
		name := v.Name
		fs.Func(v.Flag, v.Usage, func(s string) error { fromFlag[name] = s; return nil })
	}
	if err := fs.Parse(args); err != nil {
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
	if c.JWKSURL == "" {
		c.JWKSURL = c.Issuer + "/.well-known/jwks.json"
	}
	if err := c.Kafka.Check(); err != nil { // names the variable; reads the files
		return Config{}, err
	}
	if len(c.KafkaBrokers) > 0 && c.RevocationTopic == "" {
		return Config{}, errors.New("JOTGUARD_REVOCATION_TOPIC: must not be empty when JOTGUARD_KAFKA_BROKERS is set")
	}
	return c, nil
}

// Usage writes the flags and their variables, for --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: demo [flags]   serve GET /hello (token required) and GET /healthz, /readyz")
	fmt.Fprintln(w, "\nEvery flag has an environment variable; the flag wins.")
	for _, v := range vars {
		def := v.Default
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  --%s (%s, default %s)\n      %s\n", v.Flag, v.Name, def, v.Usage)
	}
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

func durationVar(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 30s or 5m, got %q", s)
		}
		*field(c) = d
		return nil
	}
}
