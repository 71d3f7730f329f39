package kafkaevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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
	fctx, cancel := context.WithTimeout(ctx, mongoOpTimeout)
	cur, err := p.outbox.Find(fctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(relayBatch))
	var docs []outboxDoc
	if err == nil {
		err = cur.All(fctx, &docs)
	}
	cancel()
	p.setMongoErr(err)
	if err != nil {
		return 0, fmt.Errorf("kafkaevents: read outbox: %w", err)
	}
	if len(docs) == 0 {
		return 0, nil
	}
	recs := make([]record, len(docs))
	for i, d := range docs {
		recs[i] = record{sub: d.Subject, jti: d.ID, set: d.SET} // jti: the outbox id, unique here
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
	var ids, retry bson.A
	for _, d := range docs {
		if done[d.ID] {
			ids = append(ids, d.ID)
		} else {
			retry = append(retry, d.ID)
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mongoOpTimeout)
	defer cancel()
	if len(ids) > 0 {
		p.relayed.Add(uint64(len(ids)))
		// Acknowledged: delete. Should this fail, they are published again
		// later, and consumers drop the duplicates by jti.
		_, err := p.outbox.DeleteMany(dctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		p.setMongoErr(err)
		if err != nil {
			return len(ids), fmt.Errorf("kafkaevents: delete relayed events: %w", err)
		}
	}
	if werr != nil {
		_, _ = p.outbox.UpdateMany(dctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: retry}}}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}}})
		return len(ids), fmt.Errorf("kafkaevents: relay %d events: %w", len(retry), werr)
	}
	return len(ids), nil
}

// takeLease renews this replica's relay lease, or takes a lapsed one.
func (p *Publisher) takeLease(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, mongoOpTimeout)
	defer cancel()
	now := p.cfg.Now().UTC()
	until := now.Add(leaseFor)
	err := p.lease.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: leaseID}, {Key: "$or", Value: bson.A{
			bson.D{{Key: "owner", Value: p.owner}},
			bson.D{{Key: "until", Value: bson.D{{Key: "$lt", Value: now}}}},
		}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: p.owner}, {Key: "until", Value: until}}}},
	).Err()
	if err == nil {
		p.setMongoErr(nil)
		return true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		p.setMongoErr(err)
		return false, fmt.Errorf("kafkaevents: relay lease: %w", err)
	}
	// Held by another replica, or never created.
	_, err = p.lease.InsertOne(ctx, bson.D{{Key: "_id", Value: leaseID}, {Key: "owner", Value: p.owner}, {Key: "until", Value: until}})
	switch {
	case mongo.IsDuplicateKeyError(err):
		p.setMongoErr(nil)
		return false, nil
	case err != nil:
		p.setMongoErr(err)
		return false, fmt.Errorf("kafkaevents: relay lease: %w", err)
	}
	p.setMongoErr(nil)
	return true, nil
}

// releaseLease lets another replica relay at once.
func (p *Publisher) releaseLease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, _ = p.lease.UpdateOne(ctx, bson.D{{Key: "_id", Value: leaseID}, {Key: "owner", Value: p.owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: time.Unix(0, 0).UTC()}}}})
}
