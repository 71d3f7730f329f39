package kafkaevents

import (
	"context"
	"fmt"
	"time"
)

// RunRelay publishes the outbox until ctx is done. Run it in every replica:
// one at a time holds the lease and relays; the others take over when its
// lease runs out. It retries with backoff while Kafka is down.
func (p *Publisher) RunRelay(ctx context.Context) error {
	if p.w == nil { // no Kafka: nothing to relay to
		<-ctx.Done()
		return nil
	}
	defer p.releaseLease(context.WithoutCancel(ctx))
	var backoff time.Duration
	lastProbe := time.Now()
	for {
		wait, wake := p.cfg.RelayInterval, p.wake
		if backoff > 0 {
			wait, wake = backoff, nil // Kafka is down: new events wait for the retry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-wake:
			t.Stop()
		}
		for {
			n, err := p.relayOnce(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				p.failures.Add(1)
				backoff = min(max(2*backoff, p.cfg.RelayInterval), maxBackoff)
				p.log.WarnContext(ctx, "revocation outbox: relay failed; will retry", "err", err, "retry_in", backoff)
				break
			}
			backoff = 0
			if n == 0 {
				// Idle: keep Ready honest about Kafka now and then.
				if time.Since(lastProbe) > 5*time.Second {
					lastProbe = time.Now()
					_ = p.probeKafka(ctx)
				}
				break
			}
			// A full batch went out: go on at once with the next.
		}
	}
}

// relayOnce publishes one batch if this replica holds the lease, and says
// how many events it relayed.
func (p *Publisher) relayOnce(ctx context.Context) (int, error) {
	held, err := p.takeLease(ctx)
	if err != nil || !held {
		return 0, err
	}
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
	recs := make([]record, len(entries))
	for i, e := range entries {
		recs[i] = record{sub: e.Key, jti: e.ID, set: string(e.Payload)} // jti: the outbox id, unique here
	}
	wctx, cancel := context.WithTimeout(ctx, relayTimeout)
	failed, werr := p.write(wctx, recs)
	cancel()
	done := map[string]bool{}
	for _, r := range recs {
		done[r.jti] = true
	}
	for _, r := range failed {
		delete(done, r.jti)
	}
	var ids, retry []string
	for _, e := range entries {
		if done[e.ID] {
			ids = append(ids, e.ID)
		} else {
			retry = append(retry, e.ID)
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
		return len(ids), fmt.Errorf("kafkaevents: relay %d events: %w", len(retry), werr)
	}
	return len(ids), nil
}

// takeLease renews this replica's relay lease, or takes a lapsed one.
func (p *Publisher) takeLease(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	defer cancel()
	held, err := p.outbox.Lease(ctx, p.owner, p.cfg.Now(), leaseFor)
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
