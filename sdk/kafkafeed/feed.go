// Package kafkafeed feeds revocation events from Kafka into a revocation
// set. A record of the topic is a signed batch of events (what the issuer
// writes: one signature for many events) or a single signed SET (what
// issuers wrote before, and what receivers outside jotguard read): a Feed
// applies both (revocation.RecordVerifier).
//
// Every Feed reads every partition of the topic under its own identity: no
// consumer group, nothing committed, because every verifier replica must
// see every event. On start it replays the window that can still matter
// (max access-token TTL + leeway) by timestamp, and reports caught-up once
// it reached the high-water marks it saw at start.
//
// Whatever is on the topic, a Feed's memory stays bounded. It reads fetch
// responses itself rather than through kafka-go's Reader, which inflates a
// compressed batch whole before any size check (a record of a few KiB that
// inflated to 150 MiB took a verifier from 19 MB to 1 GB). It holds no
// record batch larger than MaxBatchBytes, as stored or inflated, and the
// process inflates one batch at a time. A batch over the limit, corrupt,
// or in a format older than Kafka 0.11's is skipped whole, by the offsets
// its header gives, logged once and counted (Stats.Undecodable): the
// records after it are still applied. Nothing global changes: kafka-go's
// codec table is not touched, and other kafka-go readers and writers in
// the process work as before.
package kafkafeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Sink is where verified events go and what Revoked asks. revocation.Set has
// it. Add reports whether the event was new (false: a duplicate jti, or an
// event too old to matter); deduplication is the Sink's job.
type Sink interface {
	Add(revocation.Event) bool
	Revoked(c *sdk.Claims) (bool, error)
}

// Config configures a Feed. Brokers, Topic, Replay and Set are required.
// The keys that authenticate events come from the Verifier the Feed is
// given to (sdk.Config.Revocations), which runs it.
type Config struct {
	Brokers []string      // bootstrap brokers, host:port
	Topic   string        // e.g. "jotguard.revocations"
	Replay  time.Duration // how far back to read on start: max access TTL + leeway
	Set     Sink          // receives verified events; answers Revoked

	// MaxStaleness is how long the feed may go without a successful broker
	// round trip before it counts as stale. Default 30s.
	MaxStaleness time.Duration
	// FailClosed makes Revoked return an error wrapping
	// sdk.ErrRevocationUnavailable while the feed is stale. When false, a
	// stale feed keeps answering from the Set and Stale reports it. Under
	// either policy Revoked answers "unknown" until the start-up replay has
	// caught up (see Ready).
	FailClosed bool

	Logger *slog.Logger // default: discard
	// Dialer connects to the brokers, for every request of the Feed
	// (metadata, offsets, fetches). Build it with kafkasec.Config.Dialer
	// for TLS and SASL. Default kafka.DefaultDialer: plaintext.
	Dialer *kafka.Dialer
	Now    func() time.Time // default time.Now; used for the replay start and staleness
}

// Stats is a snapshot of a Feed's state, for metrics and health endpoints.
type Stats struct {
	Partitions   int           // partitions being read
	CaughtUp     bool          // every partition reached its start high-water mark
	Stale        bool          // no broker contact for longer than MaxStaleness
	Lag          int64         // sum over partitions of high-water mark − next offset
	Applied      uint64        // events the Set took as new
	Duplicates   uint64        // verified events the Set already had (or found too old)
	Batches      uint64        // verified records that were batches (their events count in Applied or Duplicates)
	Poison       uint64        // records that failed verification, and batches that could not be decoded, skipped
	Undecodable  uint64        // record batches skipped whole: over MaxBatchBytes, corrupt or of an old format (also in Poison)
	KeyWaits     uint64        // records verified only after the key set was loaded or refreshed
	LastEventAt  time.Time     // when the last verified event was read; zero if none
	LastEventAge time.Duration // Now − LastEventAt; 0 if none
	LastContact  time.Time     // last successful broker round trip (fetch or offset query)
	Entries      int           // Set size, when the Sink has Len() int (revocation.Set does); else -1
}

// discoverEvery is how often partitions added later are looked for; a
// variable only so that this package's tests can shorten it.
var discoverEvery = 10 * time.Second

// Timing of the background work.
const (
	pollEvery       = time.Second // high-water marks: lag and liveness
	sweepEvery      = time.Minute // expired Set entries, when the Sink can Sweep
	requestTimeout  = 5 * time.Second
	fetchMaxWait    = 500 * time.Millisecond // a stopped partition waits out a fetch: keep it short
	fetchMaxBytes   = 1 << 20                // per fetch; the first batch comes whole even when larger
	defaultStalness = 30 * time.Second
)

// Feed reads the revocation topic into a Sink. Create it with New, start it
// with Run, and pass it as sdk.Config.Revocations.
type Feed struct {
	cfg       Config
	log       *slog.Logger
	dialer    *kafka.Dialer
	transport *kafka.Transport
	client    *kafka.Client
	addr      net.Addr       // the bootstrap brokers, for transport round trips
	fetching  sync.WaitGroup // fetch exchanges running on transport connections
	created   time.Time
	events    *revocation.RecordVerifier // set by Run
	keys      sdk.KeySource              // set by Run
	tracer    trace.Tracer

	mu    sync.Mutex
	parts map[int]*partition

	started     atomic.Bool
	latched     atomic.Bool // caught up once: stays so (readiness does not flap)
	applied     atomic.Uint64
	duplicates  atomic.Uint64
	batches     atomic.Uint64
	poison      atomic.Uint64
	undecodable atomic.Uint64
	keyWaits    atomic.Uint64
	lastEvent   atomic.Int64 // unix nanoseconds, 0: none
	lastContact atomic.Int64 // unix nanoseconds, 0: none
	// refusal is the last failure since the last contact when it says
	// the brokers refuse this client (kafkasec.Refused); nil otherwise.
	refusal atomic.Pointer[error]
}

var _ sdk.RevocationSource = (*Feed)(nil)

// partition is one partition's progress. Offsets are -1 until known.
type partition struct {
	id         int
	startHWM   atomic.Int64 // high-water mark seen when first positioned
	next       atomic.Int64 // next offset to read
	hwm        atomic.Int64 // latest high-water mark seen
	caught     atomic.Bool
	reset      atomic.Bool  // the log went behind next: seek again by timestamp
	skipBefore atomic.Int64 // replaying from the log's start: batches older than this (Unix ms) are skipped; 0: none

	mu     sync.Mutex
	cancel context.CancelFunc // stops the current reader
}

// restart stops the current reader; consume then seeks again by timestamp.
func (p *partition) restart() {
	p.reset.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
	}
}

func newPartition(id int) *partition {
	p := &partition{id: id}
	p.startHWM.Store(-1)
	p.next.Store(-1)
	p.hwm.Store(-1)
	return p
}

// advance records that the next offset to read is next, and marks the
// partition caught up once it reaches its start high-water mark.
func (p *partition) advance(next int64) {
	p.next.Store(next)
	if start := p.startHWM.Load(); start >= 0 && next >= start {
		p.caught.Store(true)
	}
}

// New checks cfg and returns a Feed; it does no I/O.
func New(cfg Config) (*Feed, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafkafeed: Config.Brokers is required")
	case cfg.Topic == "":
		return nil, errors.New("kafkafeed: Config.Topic is required")
	case cfg.Replay <= 0:
		return nil, errors.New("kafkafeed: Config.Replay must be positive (max access TTL + leeway)")
	case cfg.Set == nil:
		return nil, errors.New("kafkafeed: Config.Set is required")
	case cfg.MaxStaleness < 0:
		return nil, errors.New("kafkafeed: Config.MaxStaleness must not be negative")
	}
	cfg.Brokers = slices.Clone(cfg.Brokers)
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = defaultStalness
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dialer := cfg.Dialer
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	transport := kafkasec.Transport(dialer) // connects as the seeks' dialer does
	transport.DialTimeout = requestTimeout
	transport.MetadataTTL = pollEvery
	addr := kafka.TCP(cfg.Brokers...)
	return &Feed{
		cfg:       cfg,
		log:       log.With("component", "kafkafeed", "topic", cfg.Topic),
		dialer:    dialer,
		transport: transport,
		addr:      addr,
		client:    &kafka.Client{Addr: addr, Transport: transport, Timeout: requestTimeout},
		created:   cfg.Now(),
		parts:     make(map[int]*partition),
		tracer:    newTracer(),
	}, nil
}

// Run implements sdk.RevocationSource: it reads the topic until ctx is done,
// then returns nil. It authenticates every event with trust (the keys,
// issuer and audiences of the Verifier that runs it). It retries every
// failure (broker down, topic missing, partitions moved or added) forever,
// with capped exponential backoff and jitter; it returns an error only for a
// bug-level condition, never for the broker's state: calling Run twice, or
// without keys.
//
// sdk.NewVerifier calls Run when the Feed is its Config.Revocations: do not
// call it yourself then.
func (f *Feed) Run(ctx context.Context, trust sdk.EventTrust) error {
	if trust.Keys == nil {
		return errors.New("kafkafeed: Run without a key source")
	}
	if f.started.Swap(true) {
		return errors.New("kafkafeed: Run called twice (is the Feed given to two Verifiers?)")
	}
	f.events, f.keys = revocation.NewRecordVerifier(trust), trust.Keys
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		f.fetching.Wait() // a fetch whose caller left ends within fetchMaxWait
		f.transport.CloseIdleConnections()
	}()

	retry := backOff
	said := "" // the failure last logged, until the topic answers
	nextDiscover, nextPoll, nextSweep := time.Now(), time.Now(), time.Now().Add(sweepEvery)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(nextDiscover) {
			if err := f.discover(ctx, &wg); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				wait := retry.NextBackOff()
				// Said once per outage (or refusal), then at debug level
				// until the topic answers: the retries change nothing.
				msg, level := "revocation topic unavailable; retrying", slog.LevelWarn
				if f.failed(err) {
					msg, level = "the Kafka brokers refuse this client: check its TLS and SASL settings; retrying", slog.LevelError
				}
				if msg == said {
					level = slog.LevelDebug
				}
				said = msg
				f.log.Log(ctx, level, msg, "err", err, "retry_in", wait.Round(time.Millisecond))
				nextDiscover = now.Add(wait)
			} else {
				if said != "" {
					f.log.InfoContext(ctx, "revocation topic reachable")
					said = ""
				}
				retry.Reset()
				nextDiscover = now.Add(discoverEvery)
			}
		}
		if !now.Before(nextPoll) {
			f.pollOffsets(ctx)
			nextPoll = now.Add(pollEvery)
		}
		if s, ok := f.cfg.Set.(interface{ Sweep() int }); ok && !now.Before(nextSweep) {
			s.Sweep() // memory shrinks on a quiet topic too
			nextSweep = now.Add(sweepEvery)
		}
		timer.Reset(time.Until(earliest(nextDiscover, nextPoll)))
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// backOff is the waits between retries: d/2 to d, with d doubling from
// 100 ms to 10 s. (The library jitters around the interval it holds:
// 0.75 d ± 1/3 of it is d/2 to d.) Each retry loop takes a copy: a value,
// so that verifying a record allocates nothing for it.
var backOff = backoff.ExponentialBackOff{InitialInterval: 75 * time.Millisecond, Multiplier: 2,
	MaxInterval: 7500 * time.Millisecond, RandomizationFactor: 1.0 / 3}

// discover starts a reader for every partition not yet read.
func (f *Feed) discover(ctx context.Context, wg *sync.WaitGroup) error {
	res, err := f.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.cfg.Topic}})
	if err != nil {
		return err
	}
	f.contact()
	var ids []int
	for _, t := range res.Topics {
		if t.Name != f.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", f.cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("topic %s: no partitions", f.cfg.Topic)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	first := len(f.parts) == 0
	for _, id := range ids {
		if _, ok := f.parts[id]; ok {
			continue
		}
		p := newPartition(id)
		f.parts[id] = p
		if !first {
			f.log.InfoContext(ctx, "reading a new partition", "partition", id)
		}
		wg.Go(func() { f.consume(ctx, p) })
	}
	return nil
}

// pollOffsets asks for every partition's high-water mark: the lag, and proof
// of contact on a quiet topic.
func (f *Feed) pollOffsets(ctx context.Context) {
	parts := f.partitions()
	if len(parts) == 0 {
		return
	}
	reqs := make([]kafka.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.LastOffsetOf(p.id))
	}
	res, err := f.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{f.cfg.Topic: reqs}})
	if err != nil {
		if ctx.Err() == nil {
			f.failed(err)
			f.log.DebugContext(ctx, "high-water marks unavailable", "err", err)
		}
		return
	}
	ok := false
	for _, po := range res.Topics[f.cfg.Topic] {
		if po.Error != nil || po.LastOffset < 0 {
			continue
		}
		ok = true
		f.mu.Lock()
		p := f.parts[po.Partition]
		f.mu.Unlock()
		if p == nil {
			continue
		}
		p.hwm.Store(po.LastOffset)
		if next := p.next.Load(); next > po.LastOffset && !p.reset.Load() {
			// The broker lost data or the topic was recreated: the reader
			// would wait at an offset that no longer exists (and later skip
			// whatever lands below it).
			f.log.WarnContext(ctx, "partition log is behind the feed's position; replaying it by timestamp",
				"partition", p.id, "next_offset", next, "high_water_mark", po.LastOffset)
			p.restart()
		}
	}
	if ok {
		f.contact()
	}
}

func (f *Feed) partitions() []*partition {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*partition, 0, len(f.parts))
	for _, p := range f.parts {
		out = append(out, p)
	}
	return out
}

func (f *Feed) contact() {
	f.lastContact.Store(f.cfg.Now().UnixNano())
	f.refusal.Store(nil)
}

// failed records a failed broker request, and reports whether it says
// the brokers refuse this client.
func (f *Feed) failed(err error) bool {
	if !kafkasec.Refused(err) {
		return false
	}
	f.refusal.Store(&err)
	return true
}

// refused is the failure that says the brokers refuse this client, if
// that is the last news from them.
func (f *Feed) refused() error {
	if p := f.refusal.Load(); p != nil {
		return *p
	}
	return nil
}

// consume reads one partition until ctx is done, restarting its reader with
// backoff after any failure. After a restart it resumes at the next offset.
func (f *Feed) consume(ctx context.Context, p *partition) {
	retry := backOff
	for {
		before := p.next.Load()
		rctx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.cancel = cancel
		p.mu.Unlock()
		err := f.readPartition(rctx, p)
		cancel()
		if ctx.Err() != nil {
			return
		}
		f.failed(err)
		if p.reset.Swap(false) {
			p.next.Store(-1) // seek by timestamp again, at once
			retry.Reset()
			continue
		}
		if p.next.Load() != before {
			retry.Reset() // it made progress: start the backoff again
		}
		wait := retry.NextBackOff()
		f.log.WarnContext(ctx, "revocation partition reader failed; retrying",
			"partition", p.id, "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// readPartition positions the partition (by timestamp the first time, at
// the next offset afterwards) and applies what it fetches until an error or
// ctx ends it.
func (f *Feed) readPartition(ctx context.Context, p *partition) error {
	next := p.next.Load()
	if next < 0 {
		var err error
		if next, err = f.seek(ctx, p); err != nil {
			return fmt.Errorf("seek: %w", err)
		}
	}
	for {
		res, err := f.fetch(ctx, p.id, next)
		if err != nil {
			return err
		}
		f.contact()
		switch {
		case errors.Is(res.err, kafka.OffsetOutOfRange):
			// Retention went past next, or the log lost data: what can
			// still matter is found again by timestamp.
			f.log.WarnContext(ctx, "offset out of range; replaying the partition by timestamp",
				"partition", p.id, "next_offset", next)
			p.next.Store(-1)
			return res.err
		case res.err != nil:
			return res.err
		}
		if res.hwm >= 0 {
			p.hwm.Store(res.hwm)
		}
		for i := range res.batches {
			if next = f.applyBatch(ctx, p, &res.batches[i], next); ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

// fetch asks the partition's leader for what follows offset, waiting up to
// fetchMaxWait for a record to arrive.
func (f *Feed) fetch(ctx context.Context, partition int, offset int64) (*fetchResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchMaxWait+requestTimeout)
	defer cancel()
	req := &fetchRequest{
		topic: f.cfg.Topic, partition: int32(partition), offset: offset, clientID: f.dialer.ClientID,
		maxWait: fetchMaxWait, maxBytes: fetchMaxBytes, maxBatch: MaxBatchBytes, done: f.fetching.Done,
	}
	f.fetching.Add(1)
	res, err := f.transport.RoundTrip(ctx, f.addr, req)
	if req.claimed.CompareAndSwap(false, true) {
		f.fetching.Done() // the exchange never started, and now never will
	}
	if err != nil {
		return nil, err
	}
	fr, ok := res.(*fetchResponse)
	if !ok {
		return nil, fmt.Errorf("fetch: unexpected response %T", res)
	}
	return fr, nil
}

// applyBatch applies the records of b at or after next, and returns the
// offset after the last one applied: after the batch, unless ctx ended it.
// A batch that cannot be decoded is skipped whole: its header says where
// it ends, so no record of another batch is lost.
func (f *Feed) applyBatch(ctx context.Context, p *partition, b *rawBatch, next int64) int64 {
	last := b.last()
	if last < next { // a fetch returns the batch holding next from its start
		return next
	}
	// Replaying from the log's start (see seek), a batch older than the
	// window is skipped: its events are older still (a record's timestamp is
	// when it was written, after its event), too old to matter.
	skip := p.skipBefore.Load()
	if b.control() || skip != 0 && b.maxTime() < skip { // control: transaction markers, no events
		p.advance(last + 1)
		return last + 1
	}
	recs, err := b.records(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return next
		}
		f.undecodable.Add(1)
		f.poison.Add(1)
		f.log.WarnContext(ctx, "skipping a revocation record batch that cannot be decoded",
			"partition", p.id, "first_offset", b.base, "last_offset", last, "err", err)
		p.advance(last + 1)
		return last + 1
	}
	for _, r := range recs {
		if r.offset < next {
			continue
		}
		f.apply(ctx, p.id, r)
		if ctx.Err() != nil {
			return next // stopping: the record is read again by the next start
		}
		next = r.offset + 1
		p.advance(next)
	}
	if last >= next { // offsets compacted away, or records before next
		next = last + 1
		p.advance(next)
	}
	return next
}

// seek finds where replay starts: the first offset whose timestamp is at or
// after now − Replay. It reads the high-water mark first: that is the mark
// "caught up" means, and the answer when no record is that recent (unlike
// Reader.SetOffsetAt, which then means "the end, whenever the reader gets
// there", and could skip a record written in between).
//
// A broker answers a query by time by reading the records of the first
// batch whose timestamps reach it, and fails, or takes too long, when it
// cannot decode that batch (a bomb written there): asking again, or for
// other times that land on the same batch, makes it decode the bomb again.
// Then the replay starts at the start of the log instead, and the batches
// older than the window are skipped by the timestamps in their headers,
// read but not decoded: what the broker's answer would have skipped.
func (f *Feed) seek(ctx context.Context, p *partition) (int64, error) {
	from := f.cfg.Now().Add(-f.cfg.Replay)
	var hwm, off int64
	var byTime error
	err := f.withLeader(ctx, p.id, func(conn *kafka.Conn) (err error) {
		if hwm, err = conn.ReadLastOffset(); err != nil {
			return err
		}
		off, byTime = conn.ReadOffset(from)
		return nil
	})
	skip := int64(0)
	var kerr kafka.Error
	switch {
	case err != nil:
		return -1, err
	case errors.As(byTime, &kerr), errors.Is(byTime, os.ErrDeadlineExceeded):
		f.log.WarnContext(ctx, "the broker cannot tell where the replay starts (stuck on a batch it cannot decode?); "+
			"replaying the partition from its start, skipping what is older than the window",
			"partition", p.id, "from", from, "err", byTime)
		if err = f.withLeader(ctx, p.id, func(conn *kafka.Conn) (err error) {
			off, err = conn.ReadFirstOffset()
			return err
		}); err != nil {
			return -1, err
		}
		skip = from.UnixMilli()
	case byTime != nil:
		return -1, byTime
	}
	f.contact()
	if off < 0 || off > hwm {
		off = hwm
	}
	p.skipBefore.Store(skip)
	p.hwm.Store(hwm)
	p.startHWM.CompareAndSwap(-1, hwm)
	p.advance(off)
	f.log.DebugContext(ctx, "replaying partition", "partition", p.id,
		"from", from, "offset", off, "high_water_mark", hwm)
	return off, nil
}

// withLeader runs fn on a connection to the partition's leader, within
// requestTimeout.
func (f *Feed) withLeader(ctx context.Context, partition int, fn func(*kafka.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var conn *kafka.Conn
	var err error
	for _, b := range f.cfg.Brokers {
		if conn, err = f.dialer.DialLeader(ctx, "tcp", b, f.cfg.Topic, partition); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return fn(conn)
}

// apply verifies one record, a batch or a SET, and gives its events to the
// Set. A forged or broken record must not stop the ones after it; a batch
// is applied whole or not at all.
func (f *Feed) apply(ctx context.Context, partition int, r record) {
	span := f.startApplied(ctx, partition, r.offset, r.headers)
	events, err := f.verify(ctx, r.value)
	if err != nil {
		endApplied(span, nil, 0, err)
		if ctx.Err() != nil {
			return // stopping: the record is read again by the next start
		}
		f.poison.Add(1)
		f.log.WarnContext(ctx, "skipping revocation record that failed verification",
			"partition", partition, "offset", r.offset, "err", err)
		return
	}
	if revocation.IsBatch(r.value) {
		f.batches.Add(1)
	}
	f.lastEvent.Store(f.cfg.Now().UnixNano())
	for _, e := range events {
		if e.Odd != "" {
			f.log.WarnContext(ctx, "revocation event applied; informational members of an unexpected shape ignored",
				"partition", partition, "offset", r.offset, "event", e.ID, "members", e.Odd)
		}
	}
	applied := 0
	if all, ok := f.cfg.Set.(interface{ AddAll([]revocation.Event) int }); ok {
		applied = all.AddAll(events) // revocation.Set: one clock reading for the batch
	} else {
		for _, e := range events {
			if f.cfg.Set.Add(e) {
				applied++
			}
		}
	}
	f.applied.Add(uint64(applied))
	f.duplicates.Add(uint64(len(events) - applied))
	endApplied(span, events, applied, nil)
}

// verify authenticates one record value. It never gives up on a record for
// want of keys: while no key set is loaded it waits for one, and a record
// signed with a key the set lacks makes it refresh the key set and try
// again. Only a record whose key is missing from a key set fetched after
// the record was read is poison: the issuer publishes a key long before it
// signs with it. While the refresh fails (issuer unreachable), it retries
// with backoff and the partition waits.
func (f *Feed) verify(ctx context.Context, raw []byte) ([]revocation.Event, error) {
	wait := backOff
	for retry := 0; ; retry++ {
		events, err := f.events.Verify(ctx, raw)
		switch {
		case err == nil:
			return events, nil
		case errors.Is(err, sdk.ErrNotReady):
			if retry == 0 {
				f.keyWaits.Add(1)
			}
			if werr := f.keys.Wait(ctx); werr != nil {
				return nil, err
			}
			if retry > 0 && !sleep(ctx, wait.NextBackOff()) { // loaded, then lost again
				return nil, err
			}
		case errors.Is(err, sdk.ErrUnknownKey) && !errors.Is(err, errRefreshed):
			if retry == 0 {
				f.keyWaits.Add(1)
				f.log.InfoContext(ctx, "revocation event signed with a key not loaded yet; refreshing the key set", "err", err)
			}
			rerr := f.keys.Refresh(ctx)
			if rerr == nil {
				// The key set is fresh: one more try decides.
				if events, err = f.events.Verify(ctx, raw); errors.Is(err, sdk.ErrUnknownKey) {
					err = fmt.Errorf("%w: %w", errRefreshed, err)
				}
				return events, err
			}
			f.log.WarnContext(ctx, "key set refresh failed; the revocation event waits", "err", rerr)
			if !sleep(ctx, wait.NextBackOff()) {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// errRefreshed marks an unknown key that a fresh key set does not hold.
var errRefreshed = errors.New("not in the refreshed key set")

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// CaughtUp reports whether every partition has reached the high-water mark
// it saw when positioned (an empty partition counts at once). Once true it
// stays true: partitions added later hold only new events.
func (f *Feed) CaughtUp() bool {
	if f.latched.Load() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.parts) == 0 {
		return false
	}
	for _, p := range f.parts {
		if !p.caught.Load() {
			return false
		}
	}
	f.latched.Store(true)
	return true
}

// ErrNotCaughtUp is what Ready returns before the replay is done.
var ErrNotCaughtUp = errors.New("kafkafeed: revocation replay not caught up")

// ErrRefused is what Ready returns while the brokers refuse the Feed (its
// TLS handshake or SASL authentication fails, or it may not read the
// topic) before it ever caught up.
var ErrRefused = errors.New("kafkafeed: the Kafka brokers refuse this client (TLS or SASL settings?)")

// Stale reports whether the last successful broker round trip is older than
// MaxStaleness (or there was none for that long since New).
func (f *Feed) Stale() bool {
	return f.sinceContact() > f.cfg.MaxStaleness
}

func (f *Feed) sinceContact() time.Duration {
	last := f.created
	if n := f.lastContact.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	return f.cfg.Now().Sub(last)
}

// Retention is how far back the feed's revocations reach: the replay
// window, or the Set's retention when that is shorter (when the Set says).
// sdk.NewVerifier refuses a feed whose retention is shorter than its
// tokens may live.
func (f *Feed) Retention() time.Duration {
	r := f.cfg.Replay
	if s, ok := f.cfg.Set.(interface{ Retention() time.Duration }); ok {
		r = min(r, s.Retention())
	}
	return r
}

// Ready implements sdk.RevocationSource: it says whether revocation
// answers can be trusted:
//   - caught up with the start-up replay and in contact with the brokers: yes;
//   - unreachable longer than MaxStaleness: with FailClosed no; otherwise
//     yes, degraded (Stale reports it), answered from what the Set holds;
//   - still replaying (and not stale): no, under either policy, so a
//     restarted service never accepts a token revoked before it started;
//   - refused by the brokers before it ever caught up: no, under either
//     policy and however long it lasts (ErrRefused). That is a setting to
//     fix, not an outage to ride out: the service stays out of rotation
//     until it is fixed. A feed that caught up once follows the policy
//     above, whatever the brokers' reason.
//
// The errors wrap sdk.ErrRevocationUnavailable.
func (f *Feed) Ready() error {
	if err := f.refused(); err != nil && !f.CaughtUp() {
		return fmt.Errorf("%w: %w: %w", ErrRefused, sdk.ErrRevocationUnavailable, err)
	}
	switch d := f.sinceContact(); {
	case d > f.cfg.MaxStaleness && !f.cfg.FailClosed:
		return nil
	case d > f.cfg.MaxStaleness:
		return fmt.Errorf("kafkafeed: no broker contact for %s: %w", d.Round(time.Second), sdk.ErrRevocationUnavailable)
	case !f.CaughtUp():
		return fmt.Errorf("%w: %w", ErrNotCaughtUp, sdk.ErrRevocationUnavailable)
	}
	return nil
}

// Revoked implements sdk.RevocationChecker: the Set's answer when Ready,
// else Ready's error.
func (f *Feed) Revoked(c *sdk.Claims) (bool, error) {
	if err := f.Ready(); err != nil {
		return false, err
	}
	return f.cfg.Set.Revoked(c)
}

// Stats returns a snapshot. Lag is refreshed about every second.
func (f *Feed) Stats() Stats {
	s := Stats{
		Entries:     -1,
		CaughtUp:    f.CaughtUp(),
		Stale:       f.Stale(),
		Applied:     f.applied.Load(),
		Duplicates:  f.duplicates.Load(),
		Batches:     f.batches.Load(),
		Poison:      f.poison.Load(),
		Undecodable: f.undecodable.Load(),
		KeyWaits:    f.keyWaits.Load(),
	}
	if n := f.lastContact.Load(); n != 0 {
		s.LastContact = time.Unix(0, n)
	}
	if l, ok := f.cfg.Set.(interface{ Len() int }); ok {
		s.Entries = l.Len()
	}
	if n := f.lastEvent.Load(); n != 0 {
		s.LastEventAt = time.Unix(0, n)
		s.LastEventAge = max(f.cfg.Now().Sub(s.LastEventAt), 0)
	}
	for _, p := range f.partitions() {
		s.Partitions++
		if hwm, next := p.hwm.Load(), p.next.Load(); hwm >= 0 && next >= 0 && hwm > next {
			s.Lag += hwm - next
		}
	}
	return s
}
