// Package app wires the verifier: the sdk's Verifier, the Kafka revocation
// feed, the check endpoints (or the proxy in JOTGUARD_UPSTREAM mode), and
// /healthz, /readyz and /metrics, in one errgroup, served until the context
// ends, then drained.
//
// The operational endpoints are on the admin listener (JOTGUARD_ADMIN_ADDR)
// when there is one. Without it they share the main port in check-only
// mode, where only the proxy in front calls the verifier, and are not served
// at all in proxy mode: there every path of the main port is the
// application's, and the verifier's counters and readiness are not for its
// clients.
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
	"github.com/jotguard/jotguard/verifier/internal/tracing"
)

// Paths of the operational endpoints.
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
	tr, err := tracing.Start(ctx, "jotguard-verifier", cfg.Build.Version)
	if err != nil {
		return err
	}
	defer stopTracing(ctx, tr, log)
	if tr.On() {
		log.InfoContext(ctx, "tracing: exporting spans as the OTEL_* variables say")
	}
	// The parts (the Verifier with its revocation feed, the mode watcher)
	// run until the servers have drained, not until the signal: requests
	// served during the drain are checked against a live revocation state.
	// The first part to fail stops the rest.
	bg, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	g, gctx := errgroup.WithContext(bg)

	st := &state{failClosed: cfg.FailClosed}
	var revs sdk.RevocationChecker // stays a nil interface without brokers
	if len(cfg.KafkaBrokers) == 0 {
		log.WarnContext(ctx, "!!! JOTGUARD_KAFKA_BROKERS is not set: revocations are NOT checked; "+
			"a logged-out token stays valid until it expires !!!")
	} else {
		retention := sdk.Retention(cfg.AccessTTL, cfg.Leeway)
		st.set = revocation.NewSet(retention, nil)
		dialer, err := cfg.Kafka.Dialer("jotguard-verifier") // every connection of the feed, secured as configured
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "kafka connections", "security", cfg.Kafka)
		if w := cfg.Kafka.Warning(); w != "" {
			log.WarnContext(ctx, w)
		}
		feed, err := kafkafeed.New(kafkafeed.Config{
			Brokers: cfg.KafkaBrokers, Topic: cfg.RevocationTopic, Replay: retention,
			Set:          st.set,
			MaxStaleness: cfg.MaxStaleness,
			FailClosed:   cfg.FailClosed,
			Dialer:       dialer,
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

	m := newMetrics(st, cfg.Build)
	checker, err := authz.New(authz.Options{Verifier: v, RequiredRoles: cfg.RequiredRoles,
		Observe: m.observe, Logger: log})
	if err != nil {
		return err
	}
	var upstream *proxy.Proxy
	if cfg.Upstream != nil {
		if upstream, err = proxy.New(proxy.Options{Upstream: cfg.Upstream, Checker: checker,
			PublicPaths: cfg.PublicPaths, BodyTimeout: cfg.BodyTimeout, Logger: log}); err != nil {
			return err
		}
	}
	// main serves the checks or the proxy; ops the operational endpoints.
	var main http.Handler = checker
	ops := operational(st, m, log)
	switch {
	case upstream != nil:
		main = upstream
	case cfg.AdminAddr == "":
		main = ops(checker)
	}
	servers := []*server{{name: "JOTGUARD_VERIFIER_ADDR", addr: cfg.Addr, srv: newServer(main, log)}}
	if upstream == nil { // check endpoints answer at once; a proxied body may stream
		servers[0].srv.ReadTimeout, servers[0].srv.WriteTimeout = 10*time.Second, 10*time.Second
	} else { // Shutdown does not see hijacked connections: end the websockets
		servers[0].srv.RegisterOnShutdown(upstream.CloseUpgraded)
	}
	if cfg.AdminAddr != "" {
		admin := newServer(ops(http.NotFoundHandler()), log)
		admin.ReadTimeout, admin.WriteTimeout = 10*time.Second, 10*time.Second
		servers = append(servers, &server{name: "JOTGUARD_ADMIN_ADDR", addr: cfg.AdminAddr, srv: admin})
	}
	mode := "check endpoints"
	if upstream != nil {
		mode = "proxy to " + cfg.Upstream.Redacted()
	}
	log.InfoContext(ctx, "verifier starting", "mode", mode, "issuer", cfg.Issuer,
		"revocations", len(cfg.KafkaBrokers) > 0, "revocation_failure", cfg.RevocationFailure,
		"max_staleness", cfg.MaxStaleness.String(), "verify_cache_size", cfg.CacheSize)
	if upstream != nil && cfg.AdminAddr == "" {
		log.WarnContext(ctx, "JOTGUARD_ADMIN_ADDR is not set: /healthz, /readyz and /metrics are not served "+
			"(in proxy mode every path of the main port is proxied); set it for probes and metrics")
	}
	if st.feed != nil {
		g.Go(func() error { watchRevocationMode(gctx, st, cfg.MaxStaleness, log); return nil })
	}
	g.Go(func() error {
		defer stopParts()
		sctx, cancel := context.WithCancel(gctx) // drain at the signal, or when a part failed
		defer cancel()
		context.AfterFunc(ctx, cancel)
		return serve(sctx, st, servers, cfg.DrainDelay, cfg.ShutdownGrace, log, ready)
	})
	return g.Wait()
}

// stopTracing exports the spans still buffered, for up to 5 seconds.
func stopTracing(ctx context.Context, tr *tracing.Tracing, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tr.Stop(sctx); err != nil {
		log.WarnContext(ctx, "tracing: spans lost at shutdown", "err", err)
	}
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10, // a token is at most 8 KiB
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// no BaseContext: SIGTERM must not cancel in-flight requests
	}
}

// operational returns a middleware that serves /healthz, /readyz and
// /metrics and hands every other path to next. Routing is done without
// http.ServeMux, which would redirect unclean paths (Envoy appends the
// client's path to the ext_authz prefix).
func operational(st *state, m *metrics, log *slog.Logger) func(next http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case HealthzPath:
				w.Header().Set("Cache-Control", "no-store")
				_, _ = w.Write([]byte("ok\n"))
			case ReadyzPath:
				w.Header().Set("Cache-Control", "no-store")
				if reason := st.readiness(r.Context(), log); reason != "" {
					http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write([]byte("ready\n"))
			case MetricsPath:
				m.handler.ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// state is what readiness, the revocation policy and the metrics look at.
type state struct {
	v          *sdk.Verifier
	feed       *kafkafeed.Feed // nil: no revocations
	set        *revocation.Set // nil: no revocations
	failClosed bool
	draining   atomic.Bool
	lastReady  atomic.Pointer[string] // the last readiness reported, to log changes once
}

var errShuttingDown = errors.New("shutting down")

// readiness is what /readyz says is not ready ("" when ready): the
// dependency and its state, never an address or a driver's error, which
// are logged instead, once per change.
func (s *state) readiness(ctx context.Context, log *slog.Logger) string {
	err := s.ready()
	var reason string
	switch {
	case err == nil:
	case errors.Is(err, errShuttingDown):
		reason = "shutting down"
	case errors.Is(err, sdk.ErrNotReady):
		reason = "keys: signing keys not loaded"
	case errors.Is(err, kafkafeed.ErrNotCaughtUp):
		reason = "revocations: replay not caught up"
	case errors.Is(err, kafkafeed.ErrRefused):
		reason = "revocations: feed unreachable (refused by the brokers: check the Kafka TLS, SASL and ACL settings)"
	case errors.Is(err, sdk.ErrRevocationUnavailable):
		reason = "revocations: feed unreachable"
	default:
		reason = "unknown"
	}
	if prev := s.lastReady.Swap(&reason); prev == nil || *prev != reason {
		if err != nil {
			log.WarnContext(ctx, "not ready", "reason", reason, "err", err)
		} else if prev != nil {
			log.InfoContext(ctx, "ready")
		}
	}
	return reason
}

// ready: keys loaded, the revocation state usable (the Verifier asks its
// feed), not shutting down.
func (s *state) ready() error {
	if s.draining.Load() {
		return errShuttingDown
	}
	return s.v.Ready()
}

// degraded: open policy, answering without a live feed (not a feed the
// brokers refuse before it ever caught up: that answers 503).
func (s *state) degraded() bool {
	return s.feed != nil && !s.failClosed && s.feed.Stale() && s.feed.Ready() == nil
}

// watchRevocationMode logs once when the revocation feed goes stale (the
// open policy then verifies by signature and expiry only, the closed one
// answers 503) and once when it is back, until ctx is done.
func watchRevocationMode(ctx context.Context, st *state, staleness time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	stale := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch now := st.feed.Stale(); {
		case now && !stale && st.failClosed:
			log.ErrorContext(ctx, "revocation feed unreachable: answering 503 until it is back (closed policy)", "max_staleness", staleness)
		case now && !stale && !st.degraded(): // refused before its first catch-up
			log.ErrorContext(ctx, "revocation feed refused by the brokers: answering 503 until it connects (the open policy is for outages)", "max_staleness", staleness)
		case now && !stale:
			log.WarnContext(ctx, "revocation feed unreachable: degraded, verifying by signature and expiry only until it is back (open policy)", "max_staleness", staleness)
		case !now && stale:
			log.InfoContext(ctx, "revocation feed back: revocations are checked again")
		}
		stale = st.feed.Stale()
	}
}

// server is one listener of the verifier.
type server struct {
	name string // the variable that sets addr, for errors and logs
	addr string
	srv  *http.Server
}

// serve listens on every server's address and serves until ctx is done;
// then readiness goes off and the servers shut down in order (the main one
// first, so the admin listener answers /readyz 503 while in-flight requests
// finish), all within grace. ready gets the main listener's address.
func serve(ctx context.Context, st *state, servers []*server, delay, grace time.Duration, log *slog.Logger, ready func(string)) error {
	lns := make([]net.Listener, 0, len(servers))
	defer func() {
		for _, ln := range lns {
			_ = ln.Close() // already closed by Shutdown, unless we return early
		}
	}()
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.srv.Serve(lns[i]) }()
		log.InfoContext(ctx, "verifier listening", "addr", lns[i].Addr().String(), "setting", s.name)
	}
	if ready != nil {
		ready(lns[0].Addr().String())
	}
	select {
	case err := <-errc:
		for _, s := range servers {
			_ = s.srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	st.draining.Store(true)
	log.InfoContext(ctx, "draining: /readyz answers 503, requests are still served", "delay", delay.String(), "grace", grace.String())
	time.Sleep(delay)
	log.InfoContext(ctx, "shutting down: in-flight requests may finish", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(sctx); err != nil {
			for _, s := range servers {
				_ = s.srv.Close()
			}
			return fmt.Errorf("shutdown (%s): %w", s.name, err)
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}
