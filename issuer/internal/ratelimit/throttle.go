package ratelimit

import (
	"context"
	"errors"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// TrustFor is how long a network stays trusted for an account after its
// password matched from there.
const TrustFor = 30 * 24 * time.Hour

// PasswordAttempt implements auth.Throttle: the account slow-down.
//
// Two budgets are spent only by failed checks, so the owner's successful
// logins cost nothing:
//
//   - AccountNetwork (default 5/15m) per account and client network: a
//     network that fails for an account is slowed down, after a few quick
//     tries, to one try per interval (3 minutes). Only that network spends
//     it: nobody elsewhere can slow it down.
//   - Account (default 30/15m) per account, across every network and
//     replica: the hard cap. A unit is reserved before the check and given
//     back when the password matches, so racing guesses cannot overshoot it.
//
// The owner cannot be locked out by a third party on other networks:
//
//   - The last third of the account budget (the reserve) is kept for
//     networks that have not failed for this account within their
//     AccountNetwork window: a guesser who spent the rest from its own
//     networks cannot spend the reserve from them.
//   - A network the password matched from within TrustFor (30 days) is
//     trusted: when the account budget is spent, it is still allowed,
//     within its own AccountNetwork budget. Becoming trusted takes the
//     password.
//
// A guess refused by either budget is answered 429 without being checked.
// The reserve can be spent by a guesser with many networks (one guess per
// fresh network, refilling one unit per interval: 30 s by default); then
// only trusted networks get in until the budget refills. That is the price
// of the hard cap: past it, no untrusted network's guess is evaluated.
func (l *Limiter) PasswordAttempt(ctx context.Context, account, network string) (func(auth.Attempt), error) {
	acct, an := ByName(Account, account), ByName(AccountNetwork, account+"\x00"+network)
	trust := l.cfg.Prefix + ":rl:trust:" + hashOf(account+"\x00"+network)
	lim, anLim := l.cfg.Limits[Account], l.cfg.Limits[AccountNetwork]
	if lim.N == 0 && anLim.N == 0 {
		return func(auth.Attempt) {}, nil
	}

	// This network's own failures for the account.
	fresh := true // no failure from here within the window
	if anLim.N > 0 {
		look, err := l.allowN(ctx, an, 0, nil)
		if err != nil {
			return nil, err
		}
		l.count(AccountNetwork, look.Remaining >= 1)
		if look.Remaining < 1 {
			// The next unit comes when the budget lacks N-1 units only.
			return nil, &auth.RateLimitError{RetryAfter: max(look.full-time.Duration(anLim.N-1)*anLim.Interval(), time.Second)}
		}
		fresh = look.Remaining >= anLim.N
	}

	// The account's budget: one unit reserved now.
	reserved := false
	if lim.N > 0 {
		d, err := l.allowN(ctx, acct, 1, nil)
		if err != nil {
			return nil, err
		}
		reserved = d.Allowed
		switch reserve := lim.N / 3; {
		case !d.Allowed && !l.trusted(ctx, trust):
			l.count(Account, false)
			return nil, d.Err()
		case d.Allowed && d.Remaining < reserve && !fresh && !l.trusted(ctx, trust):
			l.giveBack(ctx, acct)
			l.count(Account, false)
			return nil, &auth.RateLimitError{RetryAfter: time.Duration(reserve-d.Remaining) * lim.Interval()}
		}
		l.count(Account, true) // within the budget, or past it from a trusted network
	}

	return func(a auth.Attempt) {
		ctx := context.WithoutCancel(ctx)
		var err error
		switch a {
		case auth.AttemptFailed:
			if anLim.N > 0 {
				_, err = l.allowN(ctx, an, 1, nil)
			}
		case auth.AttemptMatched:
			if reserved {
				l.giveBack(ctx, acct)
			}
			// The network's failures are forgiven, and it is trusted.
			if anLim.N > 0 {
				err = l.gcra.Reset(ctx, l.rateKey(an))
			}
			if lim.N > 0 {
				err = errors.Join(err, l.rdb.Set(ctx, trust, 1, TrustFor).Err())
			}
		case auth.AttemptNotChecked:
			if reserved {
				l.giveBack(ctx, acct)
			}
		}
		if err != nil {
			l.log.WarnContext(ctx, "password attempt not recorded in the rate limits", "err", err)
		}
	}, nil
}

// giveBack returns one unit to key's budget (GCRA with a cost of -1; the
// budget never exceeds its burst).
func (l *Limiter) giveBack(ctx context.Context, key Key) {
	if _, err := l.allowN(context.WithoutCancel(ctx), key, -1, nil); err != nil {
		l.log.WarnContext(ctx, "rate limit unit not given back", "class", string(key.class), "err", err)
	}
}

// trusted reports whether the trust key exists; an error says no.
func (l *Limiter) trusted(ctx context.Context, key string) bool {
	n, err := l.rdb.Exists(ctx, key).Result()
	if err != nil {
		l.log.WarnContext(ctx, "rate limit trust not read", "err", err)
	}
	return err == nil && n == 1
}

// Revocation implements auth.Throttle: the Revoke class per subject.
func (l *Limiter) Revocation(ctx context.Context, subject string) error {
	d, err := l.Allow(ctx, ByName(Revoke, subject))
	if err != nil {
		return err
	}
	return d.Err()
}

// Mail implements auth.Throttle: the Mail class per recipient. Like every
// class but the credential and revocation ones, it fails closed: mail to a
// third party is not sent unchecked.
func (l *Limiter) Mail(ctx context.Context, recipient string) error {
	d, err := l.Allow(ctx, ByName(Mail, recipient))
	if err != nil {
		return err
	}
	return d.Err()
}
