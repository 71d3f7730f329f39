// Package kafkaevents delivers revocation events: written to Kafka with
// acks=all, or queued in an outbox when Kafka does not acknowledge in time.
//
// A Publisher writes one of two record formats. By default, signed batches
// (revocation.SealBatch) for the verifiers' topic: the events of the
// Publish calls of one replica that fall within Config.BatchWait share one
// write and one signature, so a verifier checks one signature for many
// events; the records have no key (any partition: a revocation set gives
// the same answer whatever order it gets events in). With Config.SETs, one
// signed Security Event Token per event, keyed by the user id so that one
// user's events stay in one partition, in order: the standard CAEP feed,
// for receivers outside jotguard. The issuer runs a Publisher of each when
// a SET topic is configured; the batch Publisher hands every event it keeps
// to the other (Config.Tee).
//
// When Kafka does not acknowledge within Config.AckTimeout, the events go to
// an outbox (auth.Outbox, in production mongostore's revocation_outbox)
// instead, and Publish still succeeds: a logout never fails because Kafka is
// down. The outbox holds one signed SET per event, whatever the format, so a
// relay of any version can deliver it. A relay in every issuer replica
// (RunRelay) publishes the outbox with retries; a batch Publisher's relay
// checks each SET against the issuer's own keys and signs the events again
// as batches. Only the replica holding the outbox's lease relays, in queue
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
	"github.com/jotguard/jotguard/sdk"
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

// Signer signs what a Publisher writes with the issuer's current key
// (keys.Manager): SETs and batches. JWKS is the key set that verifies
// them: a batch Publisher's relay checks each SET of the outbox against it
// before it signs the events again as a batch.
type Signer interface {
	auth.Signer
	BatchKey() (revocation.BatchKey, error)
	JWKS() []byte
}

// Config configures a Publisher.
type Config struct {
	// Brokers may be empty: then every event is queued in the outbox, to be
	// relayed once a Publisher with brokers runs on the same outbox.
	Brokers []string
	Topic   string
	// SETs makes the Publisher write one signed SET per event, keyed by
	// its user, instead of batches.
	SETs bool
	// Tee, when set, gets every event this Publisher keeps after its
	// Claims (the Publisher of the SET topic, with an outbox of its own);
	// Publish succeeds once both have the events acknowledged or queued.
	Tee      *Publisher
	Audience []string // the SETs' and batches' aud
	// AckTimeout bounds how long Publish waits for Kafka's ack before it
	// queues the events in the outbox. Default 1s.
	AckTimeout time.Duration
	// BatchWait bounds how long an event waits for others to share its
	// write (and, in batches, its signature): a Publisher starts a write at
	// most once per BatchWait, at once when the last one started longer
	// ago. So an event published alone is written at once, and under load
	// a verifier checks at most one signature per BatchWait per issuer
	// replica. Default 20ms; 1ns: no wait but for the write under way.
	BatchWait     time.Duration
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

// DefaultBatchWait is Config.BatchWait's default.
const DefaultBatchWait = 20 * time.Millisecond

// Stats are cumulative counters, for metrics.
type Stats struct {
	Published uint64 // events Kafka acknowledged on Publish
	Outboxed  uint64 // events queued in the outbox
	Relayed   uint64 // outbox events the relay got acknowledged
	Records   uint64 // records Kafka acknowledged: batches, or SETs
	Failures  uint64 // failed Kafka writes and failed outbox operations
}

// Publisher writes revocation events to Kafka, or to the outbox.
type Publisher struct {
	cfg    Config
	signer Signer
	w      *kafka.Writer
	tr     *kafka.Transport // w's
	dialer *kafka.Dialer    // the probes'; w's transport connects the same way
	outbox auth.Outbox
	owner  string // of the outbox lease
	log    *slog.Logger
	sets   *revocation.SETVerifier // checks the outbox's SETs before the relay signs them as batches
	group  *groupCommit
	tracer trace.Tracer

	wake       chan struct{} // Publish queued events
	kafkaUp    chan struct{} // a write was acknowledged while the relay waits for Kafka
	relayWaits atomic.Bool   // the relay waits for Kafka to come back

	published, outboxed, relayed, records, failures atomic.Uint64

	health    sync.Mutex
	kafkaErr  error // of the last Kafka operation or probe
	outboxErr error // of the last outbox operation
	closeOnce sync.Once
}

const outboxOpTimeout = 5 * time.Second

// NewPublisher returns a Publisher that signs with signer and queues in
// outbox. It does not need Kafka to be up: events go to the outbox until it
// is.
func NewPublisher(ctx context.Context, cfg Config, signer Signer, outbox auth.Outbox) (*Publisher, error) {
	switch {
	case len(cfg.Brokers) > 0 && cfg.Topic == "":
		return nil, fmt.Errorf("%w: no topic (JOTGUARD_REVOCATION_TOPIC)", ErrConfig)
	case len(cfg.Audience) == 0:
		return nil, fmt.Errorf("%w: no audience (JOTGUARD_AUDIENCE)", ErrConfig)
	case signer == nil || outbox == nil:
		return nil, fmt.Errorf("%w: a signer and an outbox are required", ErrConfig)
	case cfg.Tee != nil && (cfg.Tee.cfg.Tee != nil || cfg.Tee.outbox == outbox):
		return nil, fmt.Errorf("%w: a Tee has an outbox of its own and no Tee", ErrConfig)
	case cfg.BatchWait < 0:
		return nil, fmt.Errorf("%w: a negative batch wait", ErrConfig)
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = DefaultBatchWait
	}
	if cfg.BatchWait >= cfg.AckTimeout {
		return nil, fmt.Errorf("%w: the batch wait (%s) must be shorter than the ack timeout (%s)", ErrConfig, cfg.BatchWait, cfg.AckTimeout)
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
			Balancer:               &kafka.Hash{}, // SETs: key = sub, one user, one partition, in order; batches: no key, round robin
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
		log:     cfg.Logger.With("format", cfg.format()),
		tracer:  newTracer(),
		wake:    make(chan struct{}, 1),
		kafkaUp: make(chan struct{}, 1),
		sets:    revocation.NewSETVerifier(sdk.EventTrust{Keys: sdk.NewLocalKeys(signer.JWKS), Audience: cfg.Audience}),
	}
	if len(cfg.Brokers) == 0 {
		p.w = nil
		p.log.WarnContext(ctx, "revocation events: no Kafka brokers configured; events are kept in the outbox and reach no verifier")
	}
	p.group = newGroupCommit(p)
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

// format names the records the Publisher writes, for logs.
func (c Config) format() string {
	if c.SETs {
		return "sets"
	}
	return "batches"
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

// record is one event on its way.
type record struct {
	id    string // unique in one write: the event id, or the outbox entry's
	sub   string // the user: the SET's record key, and the outbox entry's
	e     revocation.Event
	set   string            // the signed SET: "" until needed (the outbox, the SET format)
	trace trace.SpanContext // its creation context, sent in its headers (a SET's) or linked (a batch's); not valid: untraced
}

// Publish signs events and writes them to Kafka. It returns nil once Kafka
// acknowledged them or they are durably in the outbox (of the Tee too);
// an error only when signing failed, or both failed (ErrUndelivered, which
// wraps auth.ErrUnavailable). Cancelling ctx does not abandon events
// already signed.
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
	events = complete(events, now)
	var teeErr error
	var tee sync.WaitGroup
	if t := p.cfg.Tee; t != nil {
		tee.Go(func() { teeErr = t.publish(ctx, events, claimsOK) })
	}
	err = p.publish(ctx, events, claimsOK)
	tee.Wait()
	if err == nil {
		err = teeErr
	}
	if err != nil {
		p.unclaim(ctx, c)
		return err
	}
	p.settle(ctx, c, now)
	return nil
}

// complete gives events without one an id, and now as their time.
func complete(events []revocation.Event, now time.Time) []revocation.Event {
	out := make([]revocation.Event, len(events))
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
		out[i] = e
	}
	return out
}

// publish delivers events, under one send span. readOutbox is false when
// the outbox's database just failed: events then go to Kafka first
// without asking it.
func (p *Publisher) publish(ctx context.Context, events []revocation.Event, readOutbox bool) (err error) {
	ctx, span := p.startSend(ctx, len(events))
	var outboxed int
	defer func() { endSend(span, outboxed, err) }()
	created := span.SpanContext()
	recs := make([]record, len(events))
	for i, e := range events {
		recs[i] = record{id: e.ID, sub: e.Subject, e: e, trace: created}
	}
	if p.cfg.SETs {
		if err := p.signSETs(ctx, recs); err != nil {
			return err
		}
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
		failed, err := p.group.write(direct)
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
	if err := p.signSETs(ctx, later); err != nil {
		return err
	}
	outboxed = len(later)
	if err := p.enqueue(ctx, later); err != nil {
		outboxed = 0
		if kafkaErr == nil {
			// Queued only to keep order, and the outbox is down: Kafka now,
			// out of order rather than lost.
			failed, kerr := p.group.write(later)
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

// signSETs signs the SET of each record that has none yet.
func (p *Publisher) signSETs(ctx context.Context, recs []record) error {
	for i := range recs {
		if recs[i].set != "" {
			continue
		}
		set, err := p.signer.Sign(ctx, revocation.TokenType, revocation.NewSET(recs[i].e, p.cfg.Audience))
		if err != nil {
			return fmt.Errorf("kafkaevents: sign event %s: %w", recs[i].id, err)
		}
		recs[i].set = set
	}
	return nil
}

// mergeInOrder returns the records of recs that are in a or b, in recs'
// order.
func mergeInOrder(recs, a, b []record) []record {
	in := map[string]bool{}
	for _, r := range a {
		in[r.id] = true
	}
	for _, r := range b {
		in[r.id] = true
	}
	var out []record
	for _, r := range recs {
		if in[r.id] {
			out = append(out, r)
		}
	}
	return out
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
		Relayed: p.relayed.Load(), Records: p.records.Load(), Failures: p.failures.Load()}
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
		p.group.close() // a Publish still waiting gets its events queued
		p.releaseLease(context.Background())
		if p.w != nil {
			err = p.w.Close()
			p.tr.CloseIdleConnections() // ends the transport's metadata refreshes
		}
	})
	return err
}
