package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config configures a Limiter.
type Config struct {
	Prefix string // of every key, as the session store's; default "jg"
	Limits Limits // nil: Defaults(); a class it lacks is off
	Logger *slog.Logger
	// Registerer, when set, gets jotguard_rate_limit_decisions_total.
	Registerer prometheus.Registerer
}

// Limiter decides, through Redis, whether a request may proceed. Every
// replica given the same Redis and prefix shares its budgets.
type Limiter struct {
	rdb    redis.UniversalClient
	gcra   *redis_rate.Limiter
	cfg    Config
	log    *slog.Logger
	counts *prometheus.CounterVec
	warned atomic.Int64 // unix seconds of the last fail-open warning
}

// Decision is the answer to Allow.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until the request would pass.
	RetryAfter time.Duration
	// Remaining is how many more requests the budget allows right now.
	Remaining int
	// Unchecked: Redis could not be asked and the class fails open.
	Unchecked bool

	full time.Duration // until the budget is whole again
}

// Err is nil when d allows the request, else an *auth.RateLimitError
// carrying RetryAfter (httpapi answers it 429 with Retry-After).
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &auth.RateLimitError{RetryAfter: d.RetryAfter}
}

var _ auth.Throttle = (*Limiter)(nil)

// New returns a Limiter on rdb (a single server, Sentinel or Cluster: every
// decision touches one key).
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, fmt.Errorf("ratelimit: a Redis client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "jg"
	}
	if cfg.Limits == nil {
		cfg.Limits = Defaults()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{rdb: rdb, gcra: redis_rate.NewLimiter(rdb), cfg: cfg, log: cfg.Logger,
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jotguard_rate_limit_decisions_total",
			Help: "Rate limit decisions by class and outcome (allowed, limited, error: Redis could not be asked)."},
			[]string{"class", "outcome"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.counts); err != nil {
			return nil, fmt.Errorf("ratelimit: metrics: %w", err)
		}
	}
	return l, nil
}

// Limits are the limits in force.
func (l *Limiter) Limits() Limits { return l.cfg.Limits }

// Allow spends one request of key's budget, or refuses it. An error means
// Redis could not be asked and the class fails closed: it wraps
// auth.ErrUnavailable (503). A class that fails open allows the request
// then (Decision.Unchecked).
func (l *Limiter) Allow(ctx context.Context, key Key) (Decision, error) {
	d, err := l.allowN(ctx, key, 1)
	if err == nil && !d.Unchecked {
		l.count(key.class, d.Allowed)
	}
	return d, err
}

// count records a decision in jotguard_rate_limit_decisions_total.
func (l *Limiter) count(c Class, allowed bool) {
	outcome := "allowed"
	if !allowed {
		outcome = "limited"
	}
	l.counts.WithLabelValues(string(c), outcome).Inc()
}

// allowN spends n (n < 0 gives back, n == 0 only looks). It counts only
// the errors: callers count their decisions.
func (l *Limiter) allowN(ctx context.Context, key Key, n int) (Decision, error) {
	if key.class == "" || key.id == "" {
		return Decision{}, errNoClass
	}
	lim := l.cfg.Limits[key.class]
	if lim.N == 0 {
		return Decision{Allowed: true, Remaining: -1}, nil
	}
	res, err := l.gcra.AllowN(ctx, l.rateKey(key), redis_rate.Limit{Rate: lim.N, Burst: lim.N, Period: lim.Period}, n)
	if err != nil {
		l.counts.WithLabelValues(string(key.class), "error").Inc()
		if failOpen[key.class] {
			l.warnOpen(ctx, key.class, err)
			return Decision{Allowed: true, Unchecked: true, Remaining: -1}, nil
		}
		return Decision{}, fmt.Errorf("ratelimit: %s: %w: %w", key.class, auth.ErrUnavailable, err)
	}
	d := Decision{Allowed: n <= 0 || res.Allowed > 0, Remaining: res.Remaining, full: max(res.ResetAfter, 0)}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, 0)
	}
	return d, nil
}

// rateKey is the key's name without redis_rate's "rate:".
func (l *Limiter) rateKey(k Key) string { return l.cfg.Prefix + ":rl:" + string(k.class) + ":" + k.id }

// warnOpen logs a fail-open decision at most once every 10 s: during an
// outage every request would say the same.
func (l *Limiter) warnOpen(ctx context.Context, c Class, err error) {
	now := time.Now().Unix()
	if last := l.warned.Load(); now-last >= 10 && l.warned.CompareAndSwap(last, now) {
		l.log.WarnContext(ctx, "rate limit not checked: Redis unavailable; letting requests through", "class", string(c), "err", err)
	}
}
