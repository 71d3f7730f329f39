// Package app wires the verifier: the sdk's Verifier, the Kafka revocation
// feed, the check endpoints (and the proxy in JOTGUARD_UPSTREAM mode), and
// /healthz, /readyz and /metrics, in one errgroup, served until the context
// ends, then drained.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/verifier/internal/authz"
	"github.com/jotguard/jotguard/verifier/internal/config"
	"github.com/jotguard/jotguard/verifier/internal/proxy"
)

// Paths of the operational endpoints. In proxy mode they shadow the
// upstream's paths of the same name.
const (
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
	MetricsPath = "/metrics"
)

// Run serves until ctx is done or a part fails. ready, when set, gets the
// listening address once requests are accepted.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(addr string)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g, gctx := errgroup.WithContext(ctx) // the first part to fail stops the rest

	st := &state{failClosed: cfg.FailClosed}
	var revs sdk.RevocationChecker // stays a nil interface without brokers
	if len(cfg.KafkaBrokers) == 0 {
		log.WarnContext(ctx, "!!! JOTGUARD_KAFKA_BROKERS is not set: revocations are NOT checked; "+
			"a logged-out token stays valid until it expires !!!")
	} else {
		retention := sdk.Retention(cfg.AccessTTL, cfg.Leeway)
		st.set = revocation.NewSet(retention, nil)
		feed, err := kafkafeed.New(kafkafeed.Config{
			Brokers: cfg.KafkaBrokers, Topic: cfg.RevocationTopic, Replay: retention,
			Set:          st.set,
			MaxStaleness: cfg.MaxStaleness,
			FailClosed:   cfg.FailClosed,
			Logger:       log,
		})
		if err != nil {
			return err
		}
		st.feed = feed
		revs = feed
	}
	// The Verifier runs the feed (until gctx ends) with its own keys.
	v, err := sdk.NewVerifier(gctx, sdk.Config{Issuer: cfg.Issuer, Audience: cfg.Audience,
		JWKSURL: cfg.JWKSURL, Leeway: cfg.Leeway, MaxTokenLifetime: cfg.AccessTTL, Revocations: revs, Logger: log,
		CacheSize: cfg.CacheSize})
	if err != nil {
		return err
	}
	st.v = v

	m := newMetrics(st)
	checker, err := authz.New(authz.Options{Verifier: v, RequiredRoles: cfg.RequiredRoles,
		Observe: m.observe, Logger: log})
	if err != nil {
		return err
	}
	var upstream http.Handler
	if cfg.Upstream != nil {
		if upstream, err = proxy.New(proxy.Options{Upstream: cfg.Upstream, Checker: checker,
			PublicPaths: cfg.PublicPaths, Logger: log}); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           handler(st, m, checker, upstream),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10, // a token is at most 8 KiB
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// no BaseContext: SIGTERM must not cancel in-flight requests (STYLE §3)
	}
	if upstream == nil { // check endpoints answer at once; a proxied body may stream
		srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	}
	mode := "check endpoints"
	if upstream != nil {
		mode = "proxy to " + cfg.Upstream.Redacted()
	}
	log.InfoContext(ctx, "verifier starting", "mode", mode, "issuer", cfg.Issuer,
		"revocations", len(cfg.KafkaBrokers) > 0, "revocation_failure", cfg.RevocationFailure,
		"max_staleness", cfg.MaxStaleness.String(), "verify_cache_size", cfg.CacheSize)
	g.Go(func() error { return serve(gctx, srv, st, cfg.Addr, cfg.ShutdownGrace, log, ready) })
	return g.Wait()
}

// handler routes without http.ServeMux, which would redirect unclean paths
// (Envoy appends the client's path to the ext_authz prefix).
func handler(st *state, m *metrics, checker *authz.Checker, upstream http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case authz.Match(p):
			checker.ServeHTTP(w, r)
		case p == HealthzPath:
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte("ok\n"))
		case p == ReadyzPath:
			w.Header().Set("Cache-Control", "no-store")
			if err := st.ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		case p == MetricsPath:
			m.handler.ServeHTTP(w, r)
		case upstream != nil:
			upstream.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// state is what readiness, the revocation policy and the metrics look at.
type state struct {
	v          *sdk.Verifier
	feed       *kafkafeed.Feed // nil: no revocations
	set        *revocation.Set // nil: no revocations
	failClosed bool
	draining   atomic.Bool
}

var errShuttingDown = errors.New("shutting down")

// ready: keys loaded, the revocation state usable (the Verifier asks its
// feed), not shutting down.
func (s *state) ready() error {
	if s.draining.Load() {
		return errShuttingDown
	}
	return s.v.Ready()
}

// degraded: open policy, answering without a live feed.
func (s *state) degraded() bool { return s.feed != nil && !s.failClosed && s.feed.Stale() }

// serve listens on addr and serves until ctx is done; then readiness goes
// off and in-flight requests get up to grace to finish.
func serve(ctx context.Context, srv *http.Server, st *state, addr string, grace time.Duration, log *slog.Logger, ready func(string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("JOTGUARD_VERIFIER_ADDR: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "verifier listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	st.draining.Store(true)
	log.InfoContext(ctx, "draining", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
