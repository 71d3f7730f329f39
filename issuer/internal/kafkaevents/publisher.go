// Package kafkaevents delivers revocation events: each event is a
// signed Security Event Token written to Kafka with acks=all, keyed by the
// user id so that one user's events stay in one partition, in order.
//
// When Kafka does not acknowledge within Config.AckTimeout, the events go to
// an outbox (auth.Outbox, in production mongostore's revocation_outbox)
// instead, and Publish still succeeds: a logout never fails because Kafka is
// down. A relay in every issuer replica (RunRelay) publishes the outbox with
// retries. Only the replica holding the outbox's lease relays, in queue
// order, so a user's events reach Kafka in the order they were queued, and
// are deleted once acknowledged. The lease is short (3 s) and held only while
// there are events to relay, and the relay probes a Kafka that is down at
// least every 500 ms, so queued events leave soon after Kafka comes back or
// after the replica holding them dies. A new event of a user who still has queued
// events goes behind them in the outbox. Duplicates are possible after a
// timeout or a crash between ack and delete; consumers dedupe by jti.
package kafkaevents

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

// Errors. ErrUndelivered and Ready's error wrap auth.ErrUnavailable.
var (
	ErrConfig      = errors.New("kafkaevents: bad configuration")
	ErrUndelivered = errors.New("kafkaevents: event neither acknowledged by Kafka nor queued in the outbox")
)

var _ auth.RevocationPublisher = (*Publisher)(nil)

// errNoKafka: the Publisher was configured without brokers.
var errNoKafka = errors.New("no Kafka brokers configured (JOTGUARD_KAFKA_BROKERS)")

// Config configures a Publisher.
type Config struct {
	// Brokers may be empty: then every event is queued in the outbox, to be
	// relayed once a Publisher with brokers runs on the same outbox.
	Brokers  []string
	Topic    string
	Audience []string // the SETs' aud
	// AckTimeout bounds how long Publish waits for Kafka's ack before it
	// queues the events in the outbox. Default 1s.
	AckTimeout    time.Duration
	RelayInterval time.Duration // how often the relay looks at the outbox, default 1s
	// Claims, when set, make Publish drop an event that revokes a session
	// or a token already revoked; RevokedFor is how long one is remembered
	// after its event: as long as a token it matches can be accepted (the
	// maximum access-token lifetime plus twice the leeway, sdk.Retention).
	// Default 6m.
	Claims     Claims
	RevokedFor time.Duration
	// Dialer connects to the brokers: the writer's connections and the
	// probes'. Build it with kafkasec.Config.Dialer for TLS and SASL; nil:
	// plaintext.
	Dialer *kafka.Dialer
	Logger *slog.Logger
	Now    func() time.Time
}

// Stats are cumulative counters, for metrics.
type Stats struct {
	Published uint64 // events Kafka acknowledged on Publish
	Outboxed  uint64 // events queued in the outbox
	Relayed   uint64 // outbox events the relay got acknowledged
	Failures  uint64 // failed Kafka writes and failed outbox operations
}

// Publisher writes revocation events to Kafka, or to the outbox.
type Publisher struct {
	cfg    Config
	signer auth.Signer
	w      *kafka.Writer
	tr     *kafka.Transport // w's
	dialer *kafka.Dialer    // the probes'; w's transport connects the same way
	outbox auth.Outbox
	owner  string // of the outbox lease
	log    *slog.Logger
	tracer trace.Tracer

	wake       chan struct{} // Publish queued events
	kafkaUp    chan struct{} // a write was acknowledged while the relay waits for Kafka
	relayWaits atomic.Bool   // the relay waits for Kafka to come back

	published, outboxed, relayed, failures atomic.Uint64

	health    sync.Mutex
	kafkaErr  error // of the last Kafka operation or probe
	outboxErr error // of the last outbox operation
	closeOnce sync.Once
}

const outboxOpTimeout = 5 * time.Second

// NewPublisher returns a Publisher that signs with signer and queues in
// outbox. It does not need Kafka to be up: events go to the outbox until it
// is.
func NewPublisher(ctx context.Context, cfg Config, signer auth.Signer, outbox auth.Outbox) (*Publisher, error) {
	switch {
	case len(cfg.Brokers) > 0 && cfg.Topic == "":
		return nil, fmt.Errorf("%w: no topic (JOTGUARD_REVOCATION_TOPIC)", ErrConfig)
	case len(cfg.Audience) == 0:
		return nil, fmt.Errorf("%w: no audience (JOTGUARD_AUDIENCE)", ErrConfig)
	case signer == nil || outbox == nil:
		return nil, fmt.Errorf("%w: a signer and an outbox are required", ErrConfig)
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.RelayInterval <= 0 {
		cfg.RelayInterval = time.Second
	}
	if cfg.RevokedFor <= 0 {
		cfg.RevokedFor = 6 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dialer := &kafka.Dialer{}
	if cfg.Dialer != nil {
		*dialer = *cfg.Dialer // a copy: its timeout is ours
	}
	dialer.Timeout = probeDial
	tr := kafkasec.Transport(dialer)
	tr.DialTimeout = time.Second
	tr.MetadataTTL = 10 * time.Second
	p := &Publisher{
		cfg:    cfg,
		signer: signer,
		tr:     tr,
		dialer: dialer,
		w: &kafka.Writer{
			Addr:                   kafka.TCP(cfg.Brokers...),
			Topic:                  cfg.Topic,
			Balancer:               &kafka.Hash{}, // key = sub: one user, one partition, in order
			RequiredAcks:           kafka.RequireAll,
			BatchTimeout:           2 * time.Millisecond,
			WriteTimeout:           5 * time.Second,
			ReadTimeout:            5 * time.Second,
			MaxAttempts:            3,
			WriteBackoffMin:        50 * time.Millisecond,
			WriteBackoffMax:        500 * time.Millisecond,
			AllowAutoTopicCreation: false,
			Transport:              tr,
		},
		outbox:  outbox,
		owner:   "relay-" + rand.Text(),
		log:     cfg.Logger,
		tracer:  newTracer(),
		wake:    make(chan struct{}, 1),
		kafkaUp: make(chan struct{}, 1),
	}
	if len(cfg.Brokers) == 0 {
		p.w = nil
		p.log.WarnContext(ctx, "revocation events: no Kafka brokers configured; events are kept in the outbox and reach no verifier")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := p.Pending(pctx)
	cancel()
	if err != nil {
		p.log.WarnContext(ctx, "revocation events: the outbox is not usable now", "err", err)
	}
	if err := p.probeKafka(ctx); err != nil && p.w != nil { // without brokers: warned above
		p.kafkaFailed(ctx, "revocation events: Kafka is not usable now; events go to the outbox until it is", err,
			"brokers", cfg.Brokers, "topic", cfg.Topic)
	}
	return p, nil
}

// kafkaFailed logs a failure to reach Kafka as a warning (an outage: wait
// it out), or as an error when the brokers refuse this client (a setting
// to fix: TLS or SASL).
func (p *Publisher) kafkaFailed(ctx context.Context, msg string, err error, args ...any) {
	if kafkasec.Refused(err) {
		p.log.ErrorContext(ctx, msg+" (the Kafka brokers refuse this client: check its TLS and SASL settings)",
			append(args, "err", err)...)
		return
	}
	p.log.WarnContext(ctx, msg, append(args, "err", err)...)
}

// record is one signed event on its way.
type record struct {
	sub, jti, set string
	trace         trace.SpanContext // its creation context, sent in its headers; not valid: untraced
}

// Publish signs events and writes them to Kafka. It returns nil once Kafka
// acknowledged them or they are durably in the outbox; an error only when
// signing failed, or both failed (ErrUndelivered, which wraps
// auth.ErrUnavailable). Cancelling ctx does not abandon events already signed.
//
// With Config.Claims, an event that revokes a session or a token already
// revoked (by an earlier Publish of any replica, or by a concurrent one
// that succeeds) is dropped, and Publish returns nil for it: the session or
// token is revoked.
func (p *Publisher) Publish(ctx context.Context, events ...revocation.Event) error {
	if len(events) == 0 {
		return nil
	}
	now := p.cfg.Now()
	events, c, claimsOK, err := p.claim(ctx, events)
	if err != nil {
		return fmt.Errorf("kafkaevents: %w", err)
	}
	if len(events) == 0 {
		return nil
	}
	err = p.publish(ctx, now, events, claimsOK)
	if err != nil {
		p.unclaim(ctx, c)
		return err
	}
	p.settle(ctx, c, now)
	return nil
}

// publish signs and delivers events, under one send span. readOutbox is
// false when the outbox's database just failed: events then go to Kafka
// first without asking it.
func (p *Publisher) publish(ctx context.Context, now time.Time, events []revocation.Event, readOutbox bool) (err error) {
	ctx, span := p.startSend(ctx, len(events))
	var outboxed int
	defer func() { endSend(span, outboxed, err) }()
	created := span.SpanContext()
	recs := make([]record, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = rand.Text()
		}
		if e.At.IsZero() {
			e.At = now
		}
		if e.IssuedAt.IsZero() {
			e.IssuedAt = now
		}
		set, err := p.signer.Sign(ctx, revocation.TokenType, revocation.NewSET(e, p.cfg.Audience))
		if err != nil {
			return fmt.Errorf("kafkaevents: sign event %s: %w", e.ID, err)
		}
		recs[i] = record{sub: e.Subject, jti: e.ID, set: set, trace: created}
	}
	// From here on the events must land somewhere, whatever the caller does.
	ctx = context.WithoutCancel(ctx)

	// Keep per-user order: a user with queued events queues the new ones too.
	var queued map[string]bool
	if readOutbox {
		var err error
		queued, err = p.queuedSubjects(ctx, recs)
		if err != nil {
			p.log.WarnContext(ctx, "revocation events: outbox unreadable; writing to Kafka directly", "err", err)
		}
	}
	var direct, later []record
	for _, r := range recs {
		if queued[r.sub] {
			later = append(later, r)
		} else {
			direct = append(direct, r)
		}
	}
	var kafkaErr error
	if len(direct) > 0 {
		wctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
		failed, err := p.write(wctx, direct)
		cancel()
		p.published.Add(uint64(len(direct) - len(failed)))
		if err != nil {
			kafkaErr = err
			p.failures.Add(1)
			p.kafkaFailed(ctx, "revocation events: Kafka did not acknowledge in time; queuing in the outbox", err,
				"events", len(failed))
			later = mergeInOrder(recs, failed, later)
		}
	}
	if len(later) == 0 {
		return nil
	}
	outboxed = len(later)
	if err := p.enqueue(ctx, later); err != nil {
		outboxed = 0
		if kafkaErr == nil {
			// Queued only to keep order, and the outbox is down: Kafka now,
			// out of order rather than lost.
			wctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
			failed, kerr := p.write(wctx, later)
			cancel()
			p.published.Add(uint64(len(later) - len(failed)))
			if kerr == nil {
				return nil
			}
			kafkaErr = kerr
		}
		return fmt.Errorf("%w: %w: kafka: %w; outbox: %w", ErrUndelivered, auth.ErrUnavailable, kafkaErr, err)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// mergeInOrder returns the records of recs that are in a or b, in recs'
// order.
func mergeInOrder(recs, a, b []record) []record {
	in := map[string]bool{}
	for _, r := range a {
		in[r.jti] = true
	}
	for _, r := range b {
		in[r.jti] = true
	}
	var out []record
	for _, r := range recs {
		if in[r.jti] {
			out = append(out, r)
		}
	}
	return out
}

// write sends recs to Kafka and returns those not acknowledged. A user's
// records after a failed one count as failed too, so order is kept when
// they are retried.
func (p *Publisher) write(ctx context.Context, recs []record) ([]record, error) {
	if p.w == nil {
		p.setKafkaErr(errNoKafka)
		return recs, errNoKafka
	}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: []byte(r.sub), Value: []byte(r.set),
			Headers: withTrace([]kafka.Header{{Key: "content-type", Value: []byte(revocation.ContentType)}}, r.trace)}
	}
	err := p.w.WriteMessages(ctx, msgs...)
	p.setKafkaErr(err)
	if err == nil {
		if p.relayWaits.Load() { // Kafka is back: the relay need not wait for its probe
			select {
			case p.kafkaUp <- struct{}{}:
			default:
			}
		}
		return nil, nil
	}
	// The transport keeps the cluster's metadata, and a failed lookup,
	// until its next refresh (seconds): drop it, so that the next write
	// asks the brokers afresh.
	p.tr.CloseIdleConnections()
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(recs) {
		return recs, err
	}
	bad := map[string]bool{}
	var failed []record
	for i, r := range recs {
		if werrs[i] != nil || bad[r.sub] {
			bad[r.sub] = true
			failed = append(failed, r)
		}
	}
	return failed, err
}

// enqueue queues recs in the outbox, in order: the outbox entry's key is
// the user, its payload the signed SET.
func (p *Publisher) enqueue(ctx context.Context, recs []record) error {
	entries := make([]auth.OutboxEntry, len(recs))
	now := p.cfg.Now().UTC()
	for i, r := range recs {
		entries[i] = auth.OutboxEntry{Key: r.sub, Payload: []byte(r.set), CreatedAt: now, Trace: traceCarrier(r.trace)}
	}
	ctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	defer cancel()
	err := p.outbox.Enqueue(ctx, entries...)
	p.setOutboxErr(err)
	if err != nil {
		p.failures.Add(1)
		return fmt.Errorf("kafkaevents: outbox insert: %w", err)
	}
	p.outboxed.Add(uint64(len(recs)))
	return nil
}

// queuedSubjects says which of recs' users have events in the outbox.
func (p *Publisher) queuedSubjects(ctx context.Context, recs []record) (map[string]bool, error) {
	var subs []string
	seen := map[string]bool{}
	for _, r := range recs {
		if !seen[r.sub] {
			seen[r.sub] = true
			subs = append(subs, r.sub)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	queued, err := p.outbox.Queued(ctx, subs...)
	p.setOutboxErr(err)
	return queued, err
}

// Pending counts the events in the outbox, of every replica.
func (p *Publisher) Pending(ctx context.Context) (int64, error) {
	n, err := p.outbox.Pending(ctx)
	p.setOutboxErr(err)
	if err != nil {
		return 0, fmt.Errorf("kafkaevents: count outbox: %w", err)
	}
	return n, nil
}

// Stats returns the counters.
func (p *Publisher) Stats() Stats {
	return Stats{Published: p.published.Load(), Outboxed: p.outboxed.Load(),
		Relayed: p.relayed.Load(), Failures: p.failures.Load()}
}

// Ready is nil while Kafka or the outbox works: a logout can be answered.
func (p *Publisher) Ready() error {
	p.health.Lock()
	defer p.health.Unlock()
	if p.kafkaErr == nil || p.outboxErr == nil {
		return nil
	}
	return fmt.Errorf("kafkaevents: %w: neither Kafka nor the outbox is usable: kafka: %w; outbox: %w",
		auth.ErrUnavailable, p.kafkaErr, p.outboxErr)
}

func (p *Publisher) setKafkaErr(err error) {
	p.health.Lock()
	p.kafkaErr = err
	p.health.Unlock()
}

func (p *Publisher) setOutboxErr(err error) {
	p.health.Lock()
	p.outboxErr = err
	p.health.Unlock()
}

// probeKafka checks that a broker accepts this client and knows the topic.
func (p *Publisher) probeKafka(ctx context.Context) error {
	if p.w == nil {
		p.setKafkaErr(errNoKafka)
		return errNoKafka
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	for _, b := range p.cfg.Brokers {
		var conn *kafka.Conn
		conn, err = p.dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		var parts []kafka.Partition
		parts, err = conn.ReadPartitions(p.cfg.Topic)
		_ = conn.Close()
		if err == nil && len(parts) == 0 {
			err = fmt.Errorf("topic %s has no partitions", p.cfg.Topic)
		}
		if err == nil {
			break
		}
	}
	p.setKafkaErr(err)
	return err
}

// Close stops the writer and gives up the relay lease.
func (p *Publisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.releaseLease(context.Background())
		if p.w != nil {
			err = p.w.Close()
			p.tr.CloseIdleConnections() // ends the transport's metadata refreshes
		}
	})
	return err
}
