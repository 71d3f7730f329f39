package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/redisstore"
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
	d, err := l.allowN(ctx, key, 1, nil)
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

// AllowInRotation is Allow taken in the first Redis round trip of the
// session rotation that ctx goes on to (a refresh): it returns ctx carrying
// the decision as a redisstore.Rider, and decided, which answers it. When
// the rotation runs, the decision rides with its first command, and a
// refusal stops it before the session is touched (Rotate returns the
// *auth.RateLimitError, or the error that fails the class closed). When
// nothing took the decision (the request failed before it reached Redis),
// decided takes it then, so every request still spends its unit.
//
// A refresh is then two round trips to Redis, not three.
func (l *Limiter) AllowInRotation(ctx context.Context, key Key) (_ context.Context, decided func(context.Context) (Decision, error)) {
	var (
		rode bool
		d    Decision
		err  error
	)
	ride := func(ctx context.Context, p redis.Pipeliner) error {
		rode = true
		d, err = l.allowN(ctx, key, 1, redis_rate.NewLimiter(piped{p: p, rdb: l.rdb}))
		if err != nil {
			return err
		}
		if !d.Unchecked {
			l.count(key.class, d.Allowed)
		}
		return d.Err()
	}
	return redisstore.WithRider(ctx, ride), func(ctx context.Context) (Decision, error) {
		if !rode {
			return l.Allow(ctx, key)
		}
		return d, err
	}
}

// piped is the redis_rate client of a decision that rides in a pipeline:
// the library's EVALSHA joins the commands queued there, and the pipeline
// runs. Anything else it sends goes to the client as usual: the EVAL that
// follows a NOSCRIPT answer (a Redis that lost its script cache) is a second
// round trip, once. The algorithm, its script and the reading of its answer
// stay the library's.
type piped struct {
	p   redis.Pipeliner
	rdb redis.UniversalClient
}

func (r piped) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	cmd := r.p.EvalSha(ctx, sha1, keys, args...)
	_, _ = r.p.Exec(ctx) // each command keeps its own error
	return cmd
}

func (r piped) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return r.rdb.Eval(ctx, script, keys, args...)
}

func (r piped) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return r.rdb.EvalRO(ctx, script, keys, args...)
}

func (r piped) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return r.rdb.EvalShaRO(ctx, sha1, keys, args...)
}

func (r piped) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return r.rdb.ScriptExists(ctx, hashes...)
}

func (r piped) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return r.rdb.ScriptLoad(ctx, script)
}

func (r piped) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return r.rdb.Del(ctx, keys...)
}

// allowN spends n (n < 0 gives back, n == 0 only looks) through gcra (nil:
// the Limiter's own). It counts only the errors: callers count their
// decisions.
func (l *Limiter) allowN(ctx context.Context, key Key, n int, gcra *redis_rate.Limiter) (Decision, error) {
	if key.class == "" || key.id == "" {
		return Decision{}, errNoClass
	}
	lim := l.cfg.Limits[key.class]
	if lim.N == 0 {
		return Decision{Allowed: true, Remaining: -1}, nil
	}
	if gcra == nil {
		gcra = l.gcra
	}
	res, err := gcra.AllowN(ctx, l.rateKey(key), redis_rate.Limit{Rate: lim.N, Burst: lim.N, Period: lim.Period}, n)
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
