package kafkaevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
)

// The relay's timing (queued events reach Kafka within 2 s of its return,
// and within 5 s of the crash of the replica that held them).
const (
	// leaseFor is how long a lease outlives its last renewal: a crashed
	// holder's events wait at most this long for another replica.
	leaseFor = 3 * time.Second
	// leaseRenew is how often the holder renews it while it relays or
	// waits for Kafka.
	leaseRenew = time.Second
	// leaseMargin is kept between the end of a relay write and the end of
	// the lease, for the clocks of the replicas, which judge it, to differ.
	leaseMargin = 500 * time.Millisecond
	// relayWrite bounds one relay write to Kafka; it ends before the lease.
	relayWrite = time.Second
	// While Kafka is down the holder probes the brokers (a connection: TCP,
	// and TLS and SASL when set) every probeMin, backing off to probeMax,
	// and relays as soon as one accepts, or as soon as a Publish of this
	// replica got an ack. A probe's connection may take probeDial, as a
	// write's may: TLS and SASL take round trips.
	probeMin  = 100 * time.Millisecond
	probeMax  = 500 * time.Millisecond
	probeDial = time.Second
	// takeoverPoll is how often a replica that sees queued events while
	// another holds the lease asks for it again.
	takeoverPoll = 500 * time.Millisecond
	// idleProbe is how often an idle relay checks Kafka, for Ready.
	idleProbe = 5 * time.Second
	// relayBatch is the most events one relay write takes: a batch
	// Publisher signs them as one batch (or a few).
	relayBatch = 500
)

// Errors of relayOnce: the write to Kafka failed; the lease ends before a
// write could.
var (
	errKafkaDown = errors.New("kafka write failed")
	errLeaseEnds = errors.New("the relay lease ends too soon for a write")
)

// RunRelay publishes the outbox until ctx is done. Run it in every replica.
//
// An idle relay counts the queued events every Config.RelayInterval, or at
// once when a Publish of this replica queued some. A relay that finds events
// takes the outbox's lease and relays them in queue order, renewing the
// lease every second, and gives it up once the outbox is empty or the
// replica stops; if the replica dies, another takes the lease within
// leaseFor. While Kafka is down the lease holder probes the brokers with a
// connection, at most probeMax apart, and relays as soon as one accepts.
func (p *Publisher) RunRelay(ctx context.Context) error {
	if p.w == nil { // no Kafka: nothing to relay to, only claims to expire
		t := time.NewTicker(expireEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				p.expireClaims(ctx)
			}
		}
	}
	r := &relay{p: p, lastProbe: time.Now(), lastExpire: time.Now(),
		probe: &backoff.ExponentialBackOff{InitialInterval: probeMin, Multiplier: 2, MaxInterval: probeMax}}
	defer r.release(context.WithoutCancel(ctx))
	var wait time.Duration // the first look is at once: a restarted replica relays what it left
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-p.wake:
			t.Stop()
		case <-p.kafkaUp:
			t.Stop()
		}
		wait = r.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// relay is RunRelay's state.
type relay struct {
	p          *Publisher
	held       bool      // this replica holds the lease
	until      time.Time // by this replica's clock, at least until then
	renewed    time.Time
	down       bool                        // the last write to Kafka failed
	probe      *backoff.ExponentialBackOff // the waits between probes while down
	lastProbe  time.Time                   // of the idle Ready probe
	lastExpire time.Time                   // of the last deletion of claims that ran out
}

// step does what is due and says how long to wait for the next step.
func (r *relay) step(ctx context.Context) time.Duration {
	p := r.p
	if !r.held {
		n, err := p.Pending(ctx)
		switch {
		case err != nil:
			p.failures.Add(1)
			p.log.WarnContext(ctx, "revocation outbox: unreadable; will retry", "err", err)
			return p.cfg.RelayInterval
		case n == 0:
			if time.Since(r.lastProbe) > idleProbe { // keep Ready honest about Kafka
				r.lastProbe = time.Now()
				_ = p.probeKafka(ctx)
			}
			if time.Since(r.lastExpire) > expireEvery {
				r.lastExpire = time.Now()
				p.expireClaims(ctx)
			}
			return p.cfg.RelayInterval
		}
		if err := r.keep(ctx); err != nil || !r.held {
			return takeoverPoll
		}
	}
	if r.down && !p.reachable(ctx) {
		if err := r.keep(ctx); err != nil || !r.held {
			return takeoverPoll
		}
		return r.probe.NextBackOff()
	}
	for {
		if err := r.keep(ctx); err != nil || !r.held {
			return takeoverPoll
		}
		n, err := p.relayOnce(ctx, r.until.Add(-leaseMargin))
		switch {
		case ctx.Err() != nil:
			return 0
		case errors.Is(err, errLeaseEnds):
			continue // renewed first
		case errors.Is(err, errKafkaDown):
			p.failures.Add(1)
			if !r.down {
				p.kafkaFailed(ctx, "revocation outbox: Kafka unreachable; probing it until it answers", err)
			}
			r.setDown(true)
			r.probe.Reset()
			return r.probe.NextBackOff()
		case err != nil:
			p.failures.Add(1)
			p.log.WarnContext(ctx, "revocation outbox: relay failed; will retry", "err", err)
			return p.cfg.RelayInterval
		}
		if r.down {
			p.log.InfoContext(ctx, "revocation outbox: Kafka is back; relaying")
			r.setDown(false)
		}
		if n == 0 { // empty: let any replica take over what comes next
			r.release(ctx)
			return p.cfg.RelayInterval
		}
		// A batch went out: go on at once with the next.
	}
}

func (r *relay) setDown(down bool) {
	r.down = down
	r.p.relayWaits.Store(down)
}

// keep takes the lease, or renews it when a renewal is due.
func (r *relay) keep(ctx context.Context) error {
	if r.held && time.Since(r.renewed) < leaseRenew {
		return nil
	}
	now := r.p.cfg.Now()
	held, err := r.p.takeLease(ctx, now)
	r.held = held && err == nil
	if r.held {
		r.renewed, r.until = time.Now(), now.Add(leaseFor)
	}
	if err != nil {
		r.p.failures.Add(1)
		r.p.log.WarnContext(ctx, "revocation outbox: lease not renewed; will retry", "err", err)
	}
	return err
}

// release gives the lease up, if held, so that another replica may relay
// at once.
func (r *relay) release(ctx context.Context) {
	if r.held {
		r.p.releaseLease(ctx)
		r.held = false
	}
	r.setDown(false)
}

// relayOnce publishes one batch of the outbox, under a lease that runs
// until leaseEnd, and says how many events it relayed: 0 and no error when
// the outbox is empty. An error wraps errKafkaDown when the write to Kafka
// failed.
func (p *Publisher) relayOnce(ctx context.Context, leaseEnd time.Time) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	entries, err := p.outbox.Batch(fctx, relayBatch)
	cancel()
	p.setOutboxErr(err)
	if err != nil {
		return 0, fmt.Errorf("kafkaevents: read outbox: %w", err)
	}
	if len(entries) == 0 {
		return 0, nil
	}
	recs, bad := p.relayRecords(ctx, entries)
	if len(bad) > 0 {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
		err := p.outbox.Delete(dctx, bad...)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("kafkaevents: delete unverifiable entries: %w", err)
		}
		if len(recs) == 0 {
			return len(bad), nil // the relay goes on with the next ones
		}
	}
	links := creators(recs)
	// The write ends before the lease can lapse, so that no other replica
	// relays these events at the same time.
	deadline := time.Now().Add(relayWrite)
	if leaseEnd.Before(deadline) {
		deadline = leaseEnd
	}
	if time.Until(deadline) <= 0 {
		return 0, errLeaseEnds
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	wctx, span := p.startSend(wctx, len(recs), links...)
	span.SetAttributes(attribute.Bool("jotguard.revocation.relay", true))
	failed, werr := p.write(wctx, recs)
	endSend(span, 0, werr)
	cancel()
	done := map[string]bool{}
	for _, r := range recs {
		done[r.id] = true
	}
	for _, r := range failed {
		delete(done, r.id)
	}
	var ids, retry []string
	for _, r := range recs {
		if done[r.id] {
			ids = append(ids, r.id)
		} else {
			retry = append(retry, r.id)
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
	defer cancel()
	if len(ids) > 0 {
		p.relayed.Add(uint64(len(ids)))
		// Acknowledged: delete. Should this fail, they are published again
		// later, and consumers drop the duplicates by jti.
		err := p.outbox.Delete(dctx, ids...)
		p.setOutboxErr(err)
		if err != nil {
			return len(ids), fmt.Errorf("kafkaevents: delete relayed events: %w", err)
		}
	}
	if werr != nil {
		_ = p.outbox.Failed(dctx, retry...)
		return len(ids), fmt.Errorf("kafkaevents: relay %d events: %w: %w", len(retry), errKafkaDown, werr)
	}
	return len(ids), nil
}

// reachable reports whether a broker accepts a connection of this client
// (TLS and SASL included: a broker that refuses them is not up for it):
// the relay's cheap probe while Kafka is down. The write that follows
// tells the rest.
func (p *Publisher) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, probeDial)
	defer cancel()
	var err error
	for _, b := range p.cfg.Brokers {
		var c *kafka.Conn
		if c, err = p.dialer.DialContext(ctx, "tcp", b); err == nil {
			_ = c.Close()
			return true
		}
	}
	p.setKafkaErr(err)
	return false
}

// takeLease takes or renews this replica's relay lease, judged at now.
func (p *Publisher) takeLease(ctx context.Context, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	defer cancel()
	held, err := p.outbox.Lease(ctx, p.owner, now, leaseFor)
	p.setOutboxErr(err)
	if err != nil {
		return false, fmt.Errorf("kafkaevents: relay lease: %w", err)
	}
	return held, nil
}

// releaseLease lets another replica relay at once.
func (p *Publisher) releaseLease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = p.outbox.Release(ctx, p.owner)
}

// relayRecords are the records of outbox entries. Each entry holds a SET,
// which a SET Publisher forwards as it is. A batch Publisher checks it
// against the issuer's keys before it signs its event again in a batch:
// the relay signs only what the issuer signed. An entry that does not
// verify (its key gone from the key set, or not the issuer's) reaches no
// verifier in either format; it is logged and deleted (bad).
func (p *Publisher) relayRecords(ctx context.Context, entries []auth.OutboxEntry) (recs []record, bad []string) {
	for _, en := range entries {
		r := record{id: en.ID, sub: en.Key, set: string(en.Payload), trace: traceOf(en.Trace)} // id: the outbox id, unique here
		if !p.cfg.SETs {
			e, err := p.sets.Verify(ctx, en.Payload)
			if err != nil {
				p.failures.Add(1)
				p.log.ErrorContext(ctx, "revocation outbox: dropping an entry that does not verify against the issuer's keys",
					"entry", en.ID, "key", en.Key, "queued", en.CreatedAt, "err", err)
				bad = append(bad, en.ID)
				continue
			}
			if e.Subject == "" {
				e.Subject = en.Key // a token event's SET names no user; its entry does
			}
			r.e = e
		}
		recs = append(recs, r)
	}
	return recs, bad
}
