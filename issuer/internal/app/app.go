// Package app wires the issuer: MongoDB, Redis, keys, the revocation
// publisher, the mail queue and the HTTP API, served until the context
// ends, then drained.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/federation"
	"github.com/jotguard/jotguard/issuer/internal/httpapi"
	"github.com/jotguard/jotguard/issuer/internal/kafkaevents"
	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/mail"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/pages"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/jotguard/jotguard/issuer/internal/tracing"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"
)

// connectMongo connects with short timeouts, so a dead MongoDB fails
// requests fast (503) instead of hanging them. monitor, when set, sees
// every command.
func connectMongo(ctx context.Context, cfg config.Config, monitor *event.CommandMonitor) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI).
		SetServerSelectionTimeout(2 * time.Second).SetConnectTimeout(2 * time.Second).
		SetAppName("jotguard-issuer").SetMonitor(monitor))
	if err != nil {
		return nil, fmt.Errorf("JOTGUARD_MONGO_URI: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("JOTGUARD_MONGO_URI: MongoDB unreachable: %w", err)
	}
	return client, nil
}

// warnUnencrypted says, once for the process, what JOTGUARD_KEY_ENCRYPTION_KEY
// would encrypt.
func warnUnencrypted(ctx context.Context, log *slog.Logger, stored string) {
	log.WarnContext(ctx, "!!! JOTGUARD_KEY_ENCRYPTION_KEY is not set: "+stored+
		" stored UNENCRYPTED in MongoDB; set it (32 bytes) to encrypt them at rest !!!")
}

// newKeys returns the key manager over the signing keys stored in db.
func newKeys(ctx context.Context, db *mongo.Database, cfg config.Config, log *slog.Logger) (*keys.Manager, error) {
	store, err := mongostore.NewKeys(ctx, db)
	if err != nil {
		return nil, err
	}
	return keys.NewManager(ctx, store, keys.Config{Alg: cfg.SigningAlg, EncryptionKey: cfg.KeyEncryptionKey,
		RotateEvery: cfg.KeyRotateEvery, PublishAhead: cfg.JWKSPublishAhead, Retain: cfg.AccessTTL + cfg.Leeway,
		ReloadEvery: cfg.KeyReloadEvery, Logger: log})
}

// Run serves until ctx is done or a part fails. ready, when set, gets the
// listening address once requests are accepted.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(addr string)) error {
	tr, err := tracing.Start(ctx, "jotguard-issuer", cfg.Build.Version)
	if err != nil {
		return err
	}
	defer stopTracing(ctx, tr, log)
	if tr.On() {
		log.InfoContext(ctx, "tracing: exporting spans as the OTEL_* variables say")
	}
	c, err := newCore(ctx, cfg, log, tr)
	if err != nil {
		return err
	}
	defer c.close(ctx)
	if err := c.sessions.Ping(ctx); err != nil {
		log.WarnContext(ctx, "Redis is not reachable yet; requests get 503 until it is", "err", err)
	}
	// The parts (token checks fed by the revocation topic, the relays, the
	// key reload) run until the server has drained, not until the signal:
	// requests served during the drain get the same answers.
	bg, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	g, gctx := errgroup.WithContext(bg)
	tokens, err := tokenVerifier(gctx, cfg, c.km, c.dialer, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "jotguard_build_info",
		Help: "1, labelled with what the binary was built from."}, []string{"binary", "version", "revision", "goversion"})
	info.WithLabelValues("issuer", cfg.Build.Version, cfg.Build.Revision, cfg.Build.GoVersion).Set(1)
	reg.MustRegister(info)
	// Every replica on this Redis and prefix shares the limits.
	limiter, err := ratelimit.New(c.rdb, ratelimit.Config{Prefix: cfg.RedisPrefix, Limits: cfg.RateLimitsPerClass, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	svc, err := c.service(cfg, log, tokens, limiter)
	if err != nil {
		return err
	}
	pub, sets, hasher, mailer, km, sessions := c.pub, c.sets, c.hasher, c.mailer, c.km, c.sessions

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jotguard_password_hash_queue",
			Help: "Requests waiting for or holding a password hashing slot."},
			func() float64 { return float64(hasher.Waiting()) }),
		pendingGauge("jotguard_revocation_outbox_pending", "Revocation events waiting in the MongoDB outbox (-1: unknown).", pub.Pending),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_revocation_events_published_total",
			Help: "Revocation events Kafka acknowledged on publish."}, func() float64 { return float64(pub.Stats().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_revocation_events_outboxed_total",
			Help: "Revocation events queued in the outbox."}, func() float64 { return float64(pub.Stats().Outboxed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jotguard_revocation_batches_published_total",
			Help: "Signed batches of revocation events Kafka acknowledged (events ÷ batches: how many events a verifier checks one signature for)."},
			func() float64 { return float64(pub.Stats().Records) }),
	)
	if sets != nil {
		reg.MustRegister(pendingGauge("jotguard_revocation_set_outbox_pending",
			"SETs waiting in the MongoDB outbox of the SET topic (-1: unknown).", sets.Pending))
	}
	reg.MustRegister(mailMetrics(mailer)...)
	reg.MustRegister(auditMetrics(c.audit)...)

	outcomes := httpapi.NewOutcomes(reg) // the API's logins and registrations, and the pages'
	var accountPages http.Handler        // a nil interface when off
	if cfg.Pages {
		var fed pages.Federation // a nil interface when no provider is configured
		if len(cfg.OIDCProviders) > 0 {
			f, err := newFederation(ctx, cfg, log)
			if err != nil {
				return err
			}
			fed = f
		}
		pg, err := pages.New(pages.Options{Service: svc, Limiter: limiter, RefreshTTL: cfg.RefreshTTL,
			CookieSecure: cfg.CookieSecure, BodyLimit: cfg.BodyLimit, PasswordMin: cfg.PasswordMinLength,
			Title: cfg.PagesTitle, Stylesheet: cfg.PagesStylesheet, Federation: fed, Outcomes: outcomes, Logger: log})
		if err != nil {
			return err
		}
		accountPages = pg
	}
	api := httpapi.New(httpapi.Options{Service: svc, Pages: accountPages, Outcomes: outcomes, Keys: km, Issuer: cfg.Issuer, RefreshTTL: cfg.RefreshTTL,
		CookieSecure: cfg.CookieSecure, AllowedOrigins: cfg.AllowedOrigins, TrustedProxies: cfg.TrustedProxies,
		BodyLimit: cfg.BodyLimit, Limiter: limiter, JWKSMaxAge: cfg.JWKSMaxAge,
		Ready: func(ctx context.Context) map[string]error {
			failing := map[string]error{}
			for name, err := range map[string]error{
				"mongodb":             c.mc.Ping(ctx, nil),
				"redis":               sessions.Ping(ctx),
				"signing_keys":        km.Ready(),
				"revocation_delivery": deliveryReady(pub, sets), // Kafka or the outbox
				"revocation_state":    tokens.Ready(),           // what /me is checked against
			} {
				if err != nil {
					failing[name] = err
				}
			}
			return failing
		},
		Registry: reg, Logger: log})

	g.Go(func() error { return km.Run(gctx) })
	g.Go(func() error { return pub.RunRelay(gctx) })
	if sets != nil {
		g.Go(func() error { return sets.RunRelay(gctx) })
	}
	g.Go(func() error { return mailer.Run(gctx) }) // not in readiness: an SMTP outage only delays mail
	g.Go(func() error { return c.audit.Run(gctx) })
	g.Go(func() error { sweep(gctx, "link tokens", c.links.DeleteExpired, log); return nil })
	g.Go(func() error { sweep(gctx, "audit entries", c.auditLog.DeleteExpired, log); return nil })
	srv := &http.Server{Handler: traceHTTP(tr, api), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)} // no BaseContext: SIGTERM must not cancel in-flight requests
	g.Go(func() error {
		defer stopParts()
		return serve(untilSignalOrFailure(ctx, gctx), srv, api.Drain, cfg.Addr, cfg.DrainDelay, cfg.ShutdownGrace, log, ready)
	})
	return g.Wait()
}

// sweep deletes what expired (link tokens, audit entries) every 10
// minutes (with jitter, so replicas spread out), until ctx ends: FerretDB
// has no TTL index, and on MongoDB it only hastens what the TTL index does.
func sweep(ctx context.Context, what string, deleteExpired func(context.Context, time.Time) error, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10*time.Minute + rand.N(time.Minute)):
		}
		if err := deleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "expired "+what+" not deleted; retried later", "err", err)
		}
	}
}

// newFederation returns the sign-in through the configured OpenID
// providers, and discovers them in the background: a provider that is
// down is logged, and tried again at its next sign-in.
func newFederation(ctx context.Context, cfg config.Config, log *slog.Logger) (*federation.Federation, error) {
	f, err := federation.New(federation.Config{Providers: cfg.OIDCProviders, PublicURL: cfg.PublicURL,
		Key: cfg.KeyEncryptionKey, CookieSecure: cfg.CookieSecure, Leeway: cfg.Leeway, HTTPClient: cfg.OIDCClient})
	if err != nil {
		return nil, err
	}
	go func() {
		for name, err := range f.Check(context.WithoutCancel(ctx)) {
			log.WarnContext(ctx, "OpenID provider not discovered; tried again at its next sign-in", "provider", name, "err", err)
		}
	}()
	for _, p := range f.Providers() {
		log.InfoContext(ctx, "sign-in through an OpenID provider", "provider", p.Name, "redirect_uri", p.RedirectURI)
	}
	return f, nil
}

// newMailer returns the mail queue on its own MongoDB outbox, sealed under
// the key encryption key when it is set.
func newMailer(ctx context.Context, db *mongo.Database, cfg config.Config, log *slog.Logger) (*mail.Queue, error) {
	outbox, err := mongostore.NewOutbox(ctx, db, mail.OutboxCollection)
	if err != nil {
		return nil, err
	}
	return mail.NewQueue(ctx, mail.Config{SMTPURL: string(cfg.SMTPURL), From: cfg.MailFrom, PublicURL: cfg.PublicURL,
		EncryptionKey: cfg.KeyEncryptionKey, Logger: log}, outbox)
}

// pendingGauge reports an outbox's size, or -1 when it cannot be read
// within a second.
func pendingGauge(name, help string, pending func(context.Context) (int64, error)) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := pending(c)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// mailMetrics are the mail queue's counters and the outbox's size.
func mailMetrics(q *mail.Queue) []prometheus.Collector {
	counter := func(name, help string, v func(mail.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(q.Stats())) })
	}
	return []prometheus.Collector{
		pendingGauge("jotguard_mail_outbox_pending", "Messages waiting in the MongoDB mail outbox (-1: unknown).", q.Pending),
		counter("jotguard_mail_queued_total", "Messages queued for delivery.", func(s mail.Stats) uint64 { return s.Queued }),
		counter("jotguard_mail_sent_total", "Messages the SMTP server took.", func(s mail.Stats) uint64 { return s.Sent }),
		counter("jotguard_mail_failed_total", "Failed delivery attempts; each message is retried.", func(s mail.Stats) uint64 { return s.Failed }),
		counter("jotguard_mail_dropped_total", "Messages not sent on purpose: refused for good by the SMTP server, or mail is disabled.",
			func(s mail.Stats) uint64 { return s.Dropped }),
	}
}

// deliveryReady is nil while every publisher can take a logout's events.
func deliveryReady(pub, sets *kafkaevents.Publisher) error {
	if sets == nil {
		return pub.Ready()
	}
	return errors.Join(pub.Ready(), sets.Ready())
}

// tokenVerifier checks the issuer's own access tokens (/me, logout by
// Bearer token, token revocation) with the sdk's engine: the keys come from
// the key manager in the process, and the revocation state from the same
// Kafka topic every verifier reads, so the issuer rejects exactly what they
// reject. Without brokers it checks signatures and claims only (the
// Redis session check in auth still ends logged-out sessions at once).
func tokenVerifier(ctx context.Context, cfg config.Config, km *keys.Manager, dialer *kafka.Dialer, log *slog.Logger) (*sdk.Verifier, error) {
	var revs sdk.RevocationChecker // a nil interface without brokers
	if len(cfg.KafkaBrokers) > 0 {
		retention := sdk.Retention(cfg.AccessTTL, cfg.Leeway)
		feed, err := kafkafeed.New(kafkafeed.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.RevocationTopic,
			Replay: retention, Set: revocation.NewSet(retention, nil), Dialer: dialer, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("revocation feed: %w", err)
		}
		revs = feed
	}
	return sdk.NewVerifier(ctx, sdk.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway,
		MaxTokenLifetime: cfg.AccessTTL,
		Keys:             sdk.NewLocalKeys(km.JWKS), Revocations: revs, CacheSize: sdk.DefaultCacheSize, Logger: log})
}

// traceHTTP makes each request but the probes and scrapes a server span,
// when tracing is on; httpapi names it after the route. Off, api is
// served as it is.
func traceHTTP(tr *tracing.Tracing, api http.Handler) http.Handler {
	if !tr.On() {
		return api
	}
	return otelhttp.NewHandler(api, "", otelhttp.WithTracerProvider(tr.Provider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}))
}

// stopTracing exports the spans still buffered, for up to 5 seconds.
func stopTracing(ctx context.Context, tr *tracing.Tracing, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tr.Stop(sctx); err != nil {
		log.WarnContext(ctx, "tracing: spans lost at shutdown", "err", err)
	}
}

// untilSignalOrFailure is done when ctx (the signal) or parts (a part
// failed) is.
func untilSignalOrFailure(ctx, parts context.Context) context.Context {
	c, cancel := context.WithCancel(parts)
	context.AfterFunc(ctx, cancel)
	return c
}

// serve listens on addr and serves until ctx is done; then readiness goes
// off and in-flight requests get up to grace to finish.
func serve(ctx context.Context, srv *http.Server, drain func(), addr string, delay, grace time.Duration, log *slog.Logger, ready func(string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("JOTGUARD_ISSUER_ADDR: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "issuer listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Readiness off first, and keep serving for the drain delay: endpoint
	// controllers and load balancers take a few seconds to stop sending, and
	// a listener closed at once would refuse what they still send.
	drain()
	log.InfoContext(ctx, "draining: /readyz answers 503, requests are still served", "delay", delay.String(), "grace", grace.String())
	time.Sleep(delay)
	log.InfoContext(ctx, "shutting down: in-flight requests may finish", "grace", grace.String())
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

// Keys runs `issuer keys rotate|list`.
func Keys(ctx context.Context, cfg config.Config, log *slog.Logger, cmd string, w io.Writer) error {
	if cmd != "rotate" && cmd != "list" {
		return fmt.Errorf("keys: unknown command %q (want rotate or list)", cmd)
	}
	mc, err := connectMongo(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	if cfg.KeyEncryptionKey == nil {
		warnUnencrypted(ctx, log, "signing keys are")
	}
	km, err := newKeys(ctx, mc.Database(cfg.MongoDB), cfg, log)
	if err != nil {
		return err
	}
	if cmd == "rotate" {
		k, err := km.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "added key %s (%s), signs from %s\n", k.KID, k.Alg, k.NotBefore.Format(time.RFC3339))
	}
	list, err := km.List(ctx)
	if err != nil {
		return err
	}
	keys.PrintList(w, list)
	return nil
}

// redisLogger sends go-redis's own messages (dial failures while Redis is
// down) to the debug level: each failed request is already logged once.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
