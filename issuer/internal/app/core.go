package app

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/jotguard/jotguard/issuer/internal/audit"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/kafkaevents"
	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/issuer/internal/mail"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/password"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
	"github.com/jotguard/jotguard/issuer/internal/tracing"
	"github.com/jotguard/jotguard/sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// core is the issuer's stores and the parts over them that the server and
// the administration commands (issuer users, issuer clients) share. The
// background work (key reload, relays, the audit writer) is the caller's
// to run.
type core struct {
	mc       *mongo.Client
	users    *mongostore.Users
	rdb      redis.UniversalClient
	sessions *redisstore.Sessions
	km       *keys.Manager
	pub      *kafkaevents.Publisher
	sets     *kafkaevents.Publisher // the SET topic's; nil when there is none
	dialer   *kafka.Dialer          // every Kafka connection's, secured as configured
	mailer   *mail.Queue
	hasher   *password.Hasher
	links    *mongostore.LinkTokens
	clients  *mongostore.Clients
	auditLog *mongostore.AuditLog
	audit    *audit.Recorder
	closers  []func(context.Context)
}

// newCore connects to MongoDB and Redis and builds the stores, the key
// manager, the revocation publisher, the mail queue and the audit
// recorder; their MongoDB and Redis commands are spans of tr when it is on
// (nil: off). Call close when done, also after an error.
func newCore(ctx context.Context, cfg config.Config, log *slog.Logger, tr *tracing.Tracing) (c *core, err error) {
	c = &core{}
	defer func() {
		if err != nil {
			c.close(ctx)
		}
	}()
	var monitor *event.CommandMonitor
	if tr.On() {
		monitor = mongostore.TraceCommands(tr.ChildSpans())
	}
	if c.mc, err = connectMongo(ctx, cfg, monitor); err != nil {
		return nil, err
	}
	c.closers = append(c.closers, func(ctx context.Context) { _ = c.mc.Disconnect(context.WithoutCancel(ctx)) })
	db := c.mc.Database(cfg.MongoDB)
	if cfg.KeyEncryptionKey == nil {
		stored := "signing keys are"
		if cfg.SMTPURL != "" {
			stored = "signing keys, and queued mail with its one-time links, are"
		}
		warnUnencrypted(ctx, log, stored)
	}
	if c.users, err = mongostore.NewUsers(ctx, db); err != nil {
		return nil, err
	}
	redis.SetLogger(redisLogger{log}) // go-redis logs through a process-wide hook
	if c.rdb, err = redisstore.NewClient(cfg.RedisURL); err != nil {
		return nil, fmt.Errorf("JOTGUARD_REDIS_URL: %w", err)
	}
	c.closers = append(c.closers, func(context.Context) { _ = c.rdb.Close() })
	if tr.On() {
		if err := redisstore.TraceCommands(c.rdb, tr.ChildSpans()); err != nil {
			return nil, err
		}
	}
	if c.sessions, err = redisstore.New(c.rdb, redisstore.Config{Prefix: cfg.RedisPrefix, RefreshTTL: cfg.RefreshTTL, Grace: cfg.RefreshGrace}); err != nil {
		return nil, err
	}
	if c.km, err = newKeys(ctx, db, cfg, log); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	outbox, err := mongostore.NewOutbox(ctx, db, mongostore.RevocationOutbox)
	if err != nil {
		return nil, fmt.Errorf("revocation outbox: %w", err)
	}
	if c.dialer, err = cfg.Kafka.Dialer("jotguard-issuer"); err != nil {
		return nil, err
	}
	if len(cfg.KafkaBrokers) > 0 {
		log.InfoContext(ctx, "kafka connections", "security", cfg.Kafka)
		if w := cfg.Kafka.Warning(); w != "" {
			log.WarnContext(ctx, w)
		}
	}
	if c.sets, err = setPublisher(ctx, db, cfg, c.km, c.dialer, log); err != nil {
		return nil, err
	}
	if c.sets != nil {
		c.closers = append(c.closers, func(context.Context) { c.sets.Close() })
	}
	c.pub, err = kafkaevents.NewPublisher(ctx, kafkaevents.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.RevocationTopic,
		Tee: c.sets, Audience: cfg.Audience, AckTimeout: cfg.KafkaAckTimeout, BatchWait: cfg.BatchWait,
		Claims: outbox, RevokedFor: sdk.Retention(cfg.AccessTTL, cfg.Leeway), // each session or token revoked once
		Dialer: c.dialer, Logger: log}, c.km, outbox)
	if err != nil {
		return nil, fmt.Errorf("revocation publisher: %w", err)
	}
	c.closers = append(c.closers, func(context.Context) { c.pub.Close() })
	if c.mailer, err = newMailer(ctx, db, cfg, log); err != nil { // the account flows send through it (auth.Mailer)
		return nil, fmt.Errorf("mail: %w", err)
	}
	params := password.Params{Memory: cfg.Argon2Memory, Time: cfg.Argon2Time, Threads: cfg.Argon2Threads}
	hashes := cfg.HashConcurrency
	if hashes == 0 {
		limit := debug.SetMemoryLimit(-1) // set from the cgroup by main, or GOMEMLIMIT
		hashes = password.AutoConcurrency(params, limit, runtime.GOMAXPROCS(0))
		log.InfoContext(ctx, "password hashing", "concurrency", hashes, "cores", runtime.GOMAXPROCS(0),
			"memory_limit_mib", limit>>20, "argon2_memory_kib", params.Memory)
	}
	if c.hasher, err = password.New(password.Config{Params: params, Concurrency: hashes, QueueWait: cfg.HashQueueWait}); err != nil {
		return nil, err
	}
	if c.links, err = mongostore.NewLinkTokens(ctx, db); err != nil {
		return nil, fmt.Errorf("link tokens: %w", err)
	}
	c.clients = mongostore.NewClients(db)
	if c.auditLog, err = mongostore.NewAuditLog(ctx, db); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	c.audit = audit.New(c.auditLog, audit.Config{Retention: cfg.AuditRetention, Logger: log})
	return c, nil
}

// setPublisher is the Publisher of the SET topic, with its own outbox; nil
// when JOTGUARD_SET_TOPIC is not set.
func setPublisher(ctx context.Context, db *mongo.Database, cfg config.Config, km *keys.Manager, dialer *kafka.Dialer,
	log *slog.Logger) (*kafkaevents.Publisher, error) {
	if cfg.SETTopic == "" {
		return nil, nil
	}
	if cfg.SETTopic == cfg.RevocationTopic {
		log.WarnContext(ctx, "revocation events: JOTGUARD_SET_TOPIC is the revocation topic: it carries every event twice, "+
			"as a batch and as a SET, so that verifiers older than batches still get them; unset it once every verifier is upgraded")
	}
	outbox, err := mongostore.NewOutbox(ctx, db, mongostore.SETOutbox)
	if err != nil {
		return nil, fmt.Errorf("SET outbox: %w", err)
	}
	p, err := kafkaevents.NewPublisher(ctx, kafkaevents.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.SETTopic, SETs: true,
		Audience: cfg.Audience, AckTimeout: cfg.KafkaAckTimeout, BatchWait: cfg.BatchWait, Dialer: dialer,
		Logger: log}, km, outbox)
	if err != nil {
		return nil, fmt.Errorf("SET publisher: %w", err)
	}
	return p, nil
}

// close releases what newCore opened, last first.
func (c *core) close(ctx context.Context) {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i](ctx)
	}
}

// service returns the auth service over the core, checking access tokens
// with tokens and limiting with throttle (nil: no limits).
func (c *core) service(cfg config.Config, log *slog.Logger, tokens auth.TokenVerifier, throttle auth.Throttle) (*auth.Service, error) {
	return auth.NewService(auth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, ClientID: cfg.ClientID,
		AccessTTL: cfg.AccessTTL, UserRecheck: cfg.UserRecheck, PasswordMin: cfg.PasswordMinLength, PasswordMax: cfg.PasswordMaxLength,
		RequireVerifiedEmail: cfg.RequireVerifiedEmail, PublicURL: cfg.PublicURL,
		VerifyTokenTTL: cfg.VerifyTokenTTL, ResetTokenTTL: cfg.ResetTokenTTL,
		Logger: log, RequestID: logging.RequestID},
		auth.Deps{Users: c.users, Sessions: c.sessions, Hasher: c.hasher, Signer: c.km, Verifier: tokens, Events: c.pub,
			Links: c.links, Mailer: c.mailer, Throttle: throttle, Clients: c.clients, Audit: c.audit})
}

// auditMetrics are the audit recorder's counters and its queue.
func auditMetrics(r *audit.Recorder) []prometheus.Collector {
	counter := func(name, help string, v func(audit.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(r.Stats())) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jotguard_audit_queue",
			Help: "Audit entries waiting to be written to MongoDB."}, func() float64 { return float64(r.Queued()) }),
		counter("jotguard_audit_entries_written_total", "Audit entries written to MongoDB.", func(s audit.Stats) uint64 { return s.Written }),
		counter("jotguard_audit_entries_dropped_total", "Audit entries that only reached the process log (queue full, or MongoDB down at shutdown).",
			func(s audit.Stats) uint64 { return s.Dropped }),
		counter("jotguard_audit_write_failures_total", "Failed writes of audit entries; each is retried.", func(s audit.Stats) uint64 { return s.Failures }),
	}
}
