package mail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// errLeaseLost: another relay holds the lease now; this one stops sending.
var errLeaseLost = errors.New("mail: relay lease lost")

// outboxOpTimeout bounds one outbox operation of the relay.
const outboxOpTimeout = 5 * time.Second

// Run relays the outbox until ctx is done. Run it in every replica: the one
// holding the outbox's lease sends, the others take over when its lease
// runs out. While the SMTP server is unreachable it retries with capped
// exponential backoff; a message the server defers (4xx) waits for its own
// backoff while the others go on. Without an SMTP URL it just waits.
func (q *Queue) Run(ctx context.Context) error {
	if q.smtp == nil {
		<-ctx.Done()
		return nil
	}
	defer q.releaseLease(context.WithoutCancel(ctx))
	r := &relay{q: q, waiting: map[string]*retry{}, outage: q.newBackOff()}
	var wait time.Duration
	for {
		wake := q.wake
		if r.inOutage {
			wake = nil // the server is down: new messages wait for the retry
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
		full, err := r.once(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.inOutage = true
			wait = r.outage.NextBackOff()
			q.log.WarnContext(ctx, "mail relay: delivery failed; will retry", "err", err, "retry_in", wait.Round(time.Millisecond))
		case full:
			r.recovered(ctx)
			wait = 0 // more may be waiting: go on at once
		default:
			r.recovered(ctx)
			wait = min(q.cfg.PollInterval, r.nextDue())
		}
	}
}

func (q *Queue) newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = q.cfg.RetryMin, q.cfg.RetryMax
	b.RandomizationFactor = 0.2
	b.Reset()
	return b
}

// relay is the state of one Run: the outage backoff and the messages
// deferred by the server, each with its own backoff. It is kept in memory:
// a relay that takes over retries them at once, which is harmless.
type relay struct {
	q        *Queue
	outage   *backoff.ExponentialBackOff
	inOutage bool
	waiting  map[string]*retry // by outbox entry ID
	leased   time.Time         // when the lease was last taken or renewed
}

type retry struct {
	b  *backoff.ExponentialBackOff
	at time.Time
}

func (r *relay) recovered(ctx context.Context) {
	if r.inOutage {
		r.q.log.InfoContext(ctx, "mail relay: the SMTP server takes mail again")
	}
	r.inOutage = false
	r.outage.Reset()
}

// nextDue is how long until the earliest deferred message may be retried.
func (r *relay) nextDue() time.Duration {
	d := time.Duration(1<<63 - 1)
	for _, w := range r.waiting {
		d = min(d, time.Until(w.at))
	}
	return max(d, 0)
}

// postpone schedules a retry of the entry id.
func (r *relay) postpone(id string) time.Duration {
	w := r.waiting[id]
	if w == nil {
		w = &retry{b: r.q.newBackOff()}
		r.waiting[id] = w
	}
	d := w.b.NextBackOff()
	w.at = time.Now().Add(d)
	return d
}

// lease takes or renews the relay lease when a third of it has passed.
func (r *relay) lease(ctx context.Context) error {
	if !r.leased.IsZero() && time.Since(r.leased) < r.q.cfg.LeaseTTL/3 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	defer cancel()
	now := time.Now()
	held, err := r.q.outbox.Lease(ctx, r.q.owner, now, r.q.cfg.LeaseTTL)
	switch {
	case err != nil:
		r.leased = time.Time{}
		return fmt.Errorf("mail: relay lease: %w", err)
	case !held:
		r.leased = time.Time{}
		return errLeaseLost
	}
	r.leased = now
	return nil
}

// once sends what is due in one batch if this replica holds the lease. It
// reports whether the batch was full (more may wait), and an error when
// the outbox or the SMTP server failed as a whole.
func (r *relay) once(ctx context.Context) (full bool, err error) {
	q := r.q
	switch err := r.lease(ctx); {
	case errors.Is(err, errLeaseLost):
		clear(r.waiting) // another relay sends them now
		return false, nil
	case err != nil:
		return false, err
	}
	// Read past the deferred messages, so they do not hold up the rest.
	limit := q.cfg.Batch + min(len(r.waiting), 1000)
	bctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	entries, err := q.outbox.Batch(bctx, limit)
	cancel()
	if err != nil {
		return false, fmt.Errorf("mail: read outbox: %w", err)
	}
	now := time.Now()
	var due []auth.OutboxEntry
	present := map[string]bool{}
	for _, e := range entries {
		present[e.ID] = true
		if w := r.waiting[e.ID]; w == nil || !w.at.After(now) {
			due = append(due, e)
		}
	}
	for id := range r.waiting { // sent by another relay meanwhile, or deleted
		if !present[id] && len(entries) < limit {
			delete(r.waiting, id)
		}
	}
	if len(due) == 0 {
		return false, nil
	}
	sent, err := r.send(ctx, due)
	return sent == len(due) && len(entries) == limit, err
}

// send delivers due over one connection (another after a broken one) and
// says how many left the outbox (sent or dropped).
func (r *relay) send(ctx context.Context, due []auth.OutboxEntry) (int, error) {
	q := r.q
	var c *conn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	done := 0
	for i, e := range due {
		if err := r.lease(ctx); err != nil {
			if errors.Is(err, errLeaseLost) {
				return done, nil
			}
			return done, err
		}
		msg, err := decode(e.Payload, q.aead)
		if err != nil {
			// Kept: it may be readable with the right key. It waits like a
			// deferred message and does not hold up the others.
			q.failed.Add(1)
			r.markFailed(ctx, e.ID)
			q.log.ErrorContext(ctx, "mail relay: cannot read a queued message; it is kept and retried",
				"id", e.ID, "err", err, "retry_in", r.postpone(e.ID).Round(time.Millisecond))
			continue
		}
		if c == nil {
			if c, err = q.smtp.dial(ctx); err != nil {
				q.failed.Add(uint64(len(due) - i))
				r.markFailed(ctx, ids(due[i:])...)
				return done, err
			}
		}
		res := c.send(ctx, msg)
		if !res.reuse {
			c.close()
			c = nil
		}
		mail := auth.Mail{To: msg.To, Template: msg.Template}
		switch res.outcome {
		case delivered:
			q.sent.Add(1)
			delete(r.waiting, e.ID)
			q.log.InfoContext(ctx, "mail sent", "mail", mail, "id", e.ID, "attempts", e.Attempts+1)
			if err := r.remove(ctx, e.ID); err != nil {
				return done, err
			}
			done++
		case refused:
			q.dropped.Add(1)
			delete(r.waiting, e.ID)
			q.log.WarnContext(ctx, "mail refused for good by the SMTP server: dropped", "mail", mail, "id", e.ID,
				"code", res.code, "err", res.err)
			if err := r.remove(ctx, e.ID); err != nil {
				return done, err
			}
			done++
		case deferred:
			q.failed.Add(1)
			r.markFailed(ctx, e.ID)
			q.log.WarnContext(ctx, "mail deferred by the SMTP server; will retry", "mail", mail, "id", e.ID,
				"code", res.code, "err", res.err, "retry_in", r.postpone(e.ID).Round(time.Millisecond))
		case outage:
			if ctx.Err() != nil {
				return done, nil
			}
			q.failed.Add(uint64(len(due) - i))
			r.markFailed(ctx, ids(due[i:])...)
			return done, fmt.Errorf("mail: send to %s: %w", q.smtp, res.err)
		}
	}
	return done, nil
}

// remove deletes a message that left the outbox. Should this fail, the
// message is sent again later.
func (r *relay) remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
	defer cancel()
	if err := r.q.outbox.Delete(ctx, id); err != nil {
		return fmt.Errorf("mail: delete sent message: %w", err)
	}
	return nil
}

// markFailed counts an attempt on each entry (best effort: the count is
// informational).
func (r *relay) markFailed(ctx context.Context, ids ...string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
	defer cancel()
	_ = r.q.outbox.Failed(ctx, ids...)
}

func ids(es []auth.OutboxEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// releaseLease lets another replica relay at once.
func (q *Queue) releaseLease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = q.outbox.Release(ctx, q.owner)
}
