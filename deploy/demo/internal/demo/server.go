package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Hello is the body of GET /hello: who the sdk middleware says the caller
// is, and what the verifier in front of the demo said (its identity
// headers), so the two checks can be compared.
type Hello struct {
	Message   string            `json:"message"`
	Sub       string            `json:"sub"`
	Email     string            `json:"email,omitempty"`
	Roles     []string          `json:"roles"`
	Session   string            `json:"sid"`
	ExpiresAt time.Time         `json:"exp"`
	FromProxy map[string]string `json:"from_verifier"`
}

// identityHeaders are the headers the verifier sets on a request it lets
// through.
var identityHeaders = []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Session", "X-Auth-Request-Roles"}

// Handler serves the demo API. Every path but /healthz, /readyz and /public/ needs a
// token that v accepts; ready reports whether keys and revocations are
// loaded (nil: always ready).
func Handler(v *sdk.Verifier, ready func() error) http.Handler {
	protected := http.NewServeMux()
	protected.HandleFunc("GET /hello", hello)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "detail": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	// Public: the verifier in front lets JOTGUARD_PUBLIC_PATHS=/public through
	// without a token, and so does the demo.
	mux.HandleFunc("GET /public/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"service": "jotguard demo", "path": r.URL.Path,
			"note": "public: no token needed; GET /hello needs one"})
	})
	mux.Handle("/", sdk.Middleware(v)(protected))
	return mux
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, ok := sdk.ClaimsFromContext(r.Context())
	if !ok { // Middleware always sets it; refuse rather than guess
		sdk.WriteError(w, r, sdk.ErrMissingToken)
		return
	}
	h := Hello{Message: "hello, " + name(c), Sub: c.Subject, Email: c.Email, Roles: c.Roles,
		Session: c.SessionID, FromProxy: map[string]string{}}
	if h.Roles == nil {
		h.Roles = []string{}
	}
	if c.ExpiresAt != nil {
		h.ExpiresAt = c.ExpiresAt.UTC()
	}
	for _, k := range identityHeaders {
		if v := r.Header.Get(k); v != "" {
			h.FromProxy[k] = v
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h)
}

func name(c *sdk.Claims) string {
	if c.Email != "" {
		return c.Email
	}
	return c.Subject
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Run serves the demo until ctx is done. ready, if not nil, gets the
// listening address.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(addr string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var revs sdk.RevocationChecker // stays a nil interface without brokers
	if len(cfg.KafkaBrokers) > 0 {
		replay := sdk.Retention(cfg.AccessTTL, cfg.Leeway)
		dialer, err := cfg.Kafka.Dialer("jotguard-demo") // TLS and SASL, as configured
		if err != nil {
			return err
		}
		feed, err := kafkafeed.New(kafkafeed.Config{
			Brokers: cfg.KafkaBrokers, Topic: cfg.RevocationTopic, Replay: replay,
			Set:          revocation.NewSet(replay, time.Now),
			MaxStaleness: cfg.MaxStaleness, FailClosed: cfg.FailClosed, Dialer: dialer, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("demo: revocation feed: %w", err)
		}
		revs = feed
	} else {
		log.Warn("JOTGUARD_KAFKA_BROKERS is empty: tokens are checked by signature and expiry only, logouts are not seen")
	}
	// The Verifier runs the feed with its own keys until ctx ends; its Ready
	// covers both the keys and the feed's replay.
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: cfg.Issuer, Audience: cfg.Audience,
		JWKSURL: cfg.JWKSURL, Leeway: cfg.Leeway, MaxTokenLifetime: cfg.AccessTTL, Revocations: revs, Logger: log,
		CacheSize: sdk.DefaultCacheSize})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	srv := &http.Server{Handler: Handler(v, v.Ready), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("JOTGUARD_DEMO_ADDR: %w", err)
	}
	log.Info("demo listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer,
		"revocations", strings.Join(cfg.KafkaBrokers, ","), "kafka_security", cfg.Kafka)
	if ready != nil {
		ready(ln.Addr().String())
	}
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	return srv.Shutdown(sctx)
}
