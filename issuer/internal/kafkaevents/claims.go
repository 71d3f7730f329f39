package kafkaevents

import (
	"context"
	"crypto/rand"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Claims remember which sessions and tokens were revoked, shared by every
// replica (mongostore.Outbox), so that Publish revokes each one once: a
// session or a token is dead after its first event, and a second event
// would only make every verifier check and store one more record.
//
// Keys are claimed by an owner until a time. A claim is pending until its
// owner settles it (the event was acknowledged or queued) or unclaims it
// (the event could not be delivered); a claim that ran out may be taken
// over, so an owner that died before it settled blocks no one for long.
type Claims interface {
	// Claim claims keys for owner until until, judged at now, and answers
	// the keys owner holds and those another owner settled; another owner
	// claimed the rest and has not settled them yet.
	Claim(ctx context.Context, owner string, now, until time.Time, keys ...string) (held, settled []string, err error)
	// Settle marks owner's claims of keys settled until until.
	Settle(ctx context.Context, owner string, until time.Time, keys ...string) error
	// Unclaim deletes owner's claims of keys.
	Unclaim(ctx context.Context, owner string, keys ...string) error
	// ExpireClaims deletes the claims that ran out before now.
	ExpireClaims(ctx context.Context, now time.Time) error
}

const (
	claimWaitMin = 20 * time.Millisecond
	claimWaitMax = 200 * time.Millisecond
	expireEvery  = time.Minute // how often a relay deletes claims that ran out
)

// claimKey names what e revokes, if it is one session or one token: the
// key of its claim. A user-wide event has none: a later one (a password
// change after an admin revocation) revokes tokens issued since.
func claimKey(e revocation.Event) string {
	switch {
	case e.TokenID != "":
		return "jti|" + e.Issuer + "|" + e.TokenID
	case e.SessionID != "":
		return "sid|" + e.Issuer + "|" + e.Subject + "|" + e.SessionID
	}
	return ""
}

// claimed is what claim held, to settle or unclaim once the events are
// delivered or not.
type claimed struct {
	owner string
	keys  []string
}

// claim drops the events that revoke a session or token already revoked,
// or being revoked by a concurrent Publish, which it waits for: should
// that one fail, this one publishes. Without Claims, or when they fail
// (MongoDB down), every event is kept: a duplicate is harmless, a lost
// revocation is not; ok is then false. An error only when ctx ends.
func (p *Publisher) claim(ctx context.Context, events []revocation.Event) (keep []revocation.Event, c claimed, ok bool, err error) {
	if p.cfg.Claims == nil {
		return events, c, true, nil
	}
	var want []string
	for _, e := range events {
		if k := claimKey(e); k != "" && !slices.Contains(want, k) {
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		return events, c, true, nil
	}
	c.owner = "publish-" + rand.Text()
	dead := map[string]bool{} // revoked already: drop
	pending := want
	deadline := time.Now().Add(p.pendingFor())
	wait := &backoff.ExponentialBackOff{InitialInterval: claimWaitMin, Multiplier: 2, MaxInterval: claimWaitMax}
	for {
		now := p.cfg.Now()
		cctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
		held, settled, cerr := p.cfg.Claims.Claim(cctx, c.owner, now, now.Add(p.pendingFor()), pending...)
		cancel()
		if cerr != nil {
			if ctx.Err() != nil {
				p.unclaim(ctx, c)
				return nil, claimed{}, false, ctx.Err()
			}
			p.log.WarnContext(ctx, "revocation events: claims unusable; publishing without checking for repeats", "err", cerr)
			return dropDead(events, dead), c, false, nil
		}
		c.keys = append(c.keys, held...)
		for _, k := range settled {
			dead[k] = true
		}
		pending = slices.DeleteFunc(pending, func(k string) bool { return slices.Contains(held, k) || dead[k] })
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// The other owner neither settled nor gave up: publish too.
			break
		}
		t := time.NewTimer(wait.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			p.unclaim(ctx, c)
			return nil, claimed{}, false, ctx.Err()
		case <-t.C:
		}
	}
	return dropDead(events, dead), c, true, nil
}

// dropDead returns the events whose key is not in dead.
func dropDead(events []revocation.Event, dead map[string]bool) []revocation.Event {
	return slices.DeleteFunc(slices.Clone(events), func(e revocation.Event) bool { return dead[claimKey(e)] })
}

// settle marks c's keys revoked for as long as a token they match can be
// accepted anywhere.
func (p *Publisher) settle(ctx context.Context, c claimed, now time.Time) {
	if len(c.keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
	defer cancel()
	if err := p.cfg.Claims.Settle(ctx, c.owner, now.Add(p.cfg.RevokedFor), c.keys...); err != nil {
		// The claims stay pending and run out after pendingFor: a repeat
		// after that publishes once more.
		p.log.WarnContext(ctx, "revocation events: claims not settled", "err", err)
	}
}

// unclaim gives c's keys up: the events were not delivered.
func (p *Publisher) unclaim(ctx context.Context, c claimed) {
	if len(c.keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxOpTimeout)
	defer cancel()
	if err := p.cfg.Claims.Unclaim(ctx, c.owner, c.keys...); err != nil {
		p.log.WarnContext(ctx, "revocation events: claims not released", "err", err)
	}
}

// pendingFor bounds a Publish from its claim to its settling: the outbox
// read, the Kafka write, the outbox insert and the write after it.
func (p *Publisher) pendingFor() time.Duration {
	return 3*p.cfg.AckTimeout + outboxOpTimeout
}

// expireClaims deletes claims that ran out; the relay calls it.
func (p *Publisher) expireClaims(ctx context.Context) {
	if p.cfg.Claims == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, outboxOpTimeout)
	defer cancel()
	if err := p.cfg.Claims.ExpireClaims(ctx, p.cfg.Now()); err != nil {
		p.log.WarnContext(ctx, "revocation events: expired claims not deleted", "err", err)
	}
}
