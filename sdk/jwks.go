package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/cenkalti/backoff/v5"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwks is the issuer's key set: keyfunc v3 over one jwkset HTTP storage.
//
// What a verifier promises of its keys, and how it is obtained:
//   - cold start: NoErrorReturnFirstHTTPReq, so NewVerifier succeeds without
//     the issuer; coldStart then retries with backoff until keys load;
//   - background refresh every RefreshInterval; a failed refresh returns
//     before KeyReplaceAll, so the cached keys stay while the issuer is down;
//   - an unknown kid triggers at most one refetch per unknownKIDEvery
//     (a burst-1 limiter). jwkset bounds both the limiter wait and that
//     refetch by RateLimitWaitMax (= Config.UnknownKIDWait), and a limiter
//     whose next token lies beyond the deadline fails at once, so no caller
//     waits longer. (keyfunc's default, one refetch per 5 min with a one
//     minute wait, could hold callers that long.)
type jwks struct {
	kf      keyfunc.Keyfunc
	mem     jwkset.Storage // the keys of the URL, shared with fetchOnce
	url     string
	client  *http.Client
	timeout time.Duration
	loaded  atomic.Int64  // unix nanos of the last successful fetch
	first   chan struct{} // closed by the first successful fetch of a non-empty set
	started time.Time
	refresh sync.Mutex // one Refresh fetch at a time
}

var _ KeySource = (*jwks)(nil)

const (
	// unknownKIDEvery is how often an unknown kid may refetch the key set.
	unknownKIDEvery = 10 * time.Second
	// refreshEvery is how recent a fetch makes Refresh fetch no more.
	refreshEvery = time.Second
)

func newJWKS(ctx context.Context, cfg Config) (*jwks, error) {
	j := &jwks{url: cfg.JWKSURL, started: time.Now(), client: http.DefaultClient,
		timeout: max(5*time.Second, cfg.UnknownKIDWait), first: make(chan struct{})}
	j.mem = &recordingStorage{Storage: jwkset.NewMemoryStorage(), ok: &j.loaded, first: j.first}
	logRefresh := func(ctx context.Context, err error) {
		cfg.Logger.WarnContext(ctx, "jwks refresh failed", "url", cfg.JWKSURL, "err", err)
	}
	store, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    j.client,
		Ctx:                       ctx,
		HTTPTimeout:               j.timeout,
		NoErrorReturnFirstHTTPReq: true, // cold start: not ready, not an error
		RefreshErrorHandler:       logRefresh,
		RefreshInterval:           cfg.JWKSRefresh,
		Storage:                   j.mem,
	})
	if err != nil {
		return nil, fmt.Errorf("sdk: jwks %s: %w", cfg.JWKSURL, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: store},
		RateLimitWaitMax:  cfg.UnknownKIDWait,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDEvery), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("sdk: jwks %s: %w", cfg.JWKSURL, err)
	}
	j.kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		return nil, fmt.Errorf("sdk: jwks %s: %w", cfg.JWKSURL, err)
	}
	if j.Ready() != nil {
		go j.coldStart(ctx, cfg.JWKSRefresh, cfg.Logger)
	}
	return j, nil
}

// Key implements KeySource: the key of t's kid from the cached set; an
// unknown kid triggers one rate-limited refetch (see jwks).
func (j *jwks) Key(ctx context.Context, t *jwt.Token) (any, error) {
	key, err := j.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		if rerr := j.Ready(); rerr != nil {
			return nil, rerr
		}
		return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
	}
	return key, nil
}

// Wait implements KeySource.
func (j *jwks) Wait(ctx context.Context) error {
	select {
	case <-j.first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Refresh implements KeySource: a fetch now, unless one succeeded within
// refreshEvery (callers that arrive during a fetch wait for it).
func (j *jwks) Refresh(ctx context.Context) error {
	j.refresh.Lock()
	defer j.refresh.Unlock()
	if n := j.loaded.Load(); n != 0 && time.Since(time.Unix(0, n)) < refreshEvery {
		return nil
	}
	return j.fetchOnce(ctx)
}

// Ready implements KeySource: keys are loaded.
func (j *jwks) Ready() error {
	if j.loaded.Load() == 0 {
		return fmt.Errorf("%w: %s not fetched yet", ErrNotReady, j.url)
	}
	keys, err := j.mem.KeyReadAll(context.Background())
	if err != nil || len(keys) == 0 {
		return fmt.Errorf("%w: %s holds no usable key", ErrNotReady, j.url)
	}
	return nil
}

// age is the time since the last successful fetch (since start before any).
func (j *jwks) age() time.Duration {
	if n := j.loaded.Load(); n != 0 {
		return time.Since(time.Unix(0, n))
	}
	return time.Since(j.started)
}

// coldStart fetches the key set with backoff until it has keys, so a verifier
// started before its issuer becomes ready soon after the issuer comes up,
// without waiting for the refresh interval or for a request.
func (j *jwks) coldStart(ctx context.Context, ceiling time.Duration, log *slog.Logger) {
	// 100 ms, doubling up to the refresh interval or 10 s, whichever is less.
	wait := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2,
		MaxInterval: min(ceiling, 10*time.Second)}
	for j.Ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait.NextBackOff()):
		}
		if err := j.fetchOnce(ctx); err != nil && log != nil {
			log.DebugContext(ctx, "jwks not reachable yet", "url", j.url, "err", err)
		}
	}
	if log != nil {
		log.InfoContext(ctx, "jwks loaded", "url", j.url)
	}
}

// fetchOnce fetches the key set into j.mem. jwkset has no exported refresh:
// a storage built without RefreshInterval fetches once, synchronously, into
// the storage it is given, and replaces its keys only on success.
func (j *jwks) fetchOnce(ctx context.Context) error {
	_, err := jwkset.NewStorageFromHTTP(j.url, jwkset.HTTPClientStorageOptions{
		Client: j.client, Ctx: ctx, HTTPTimeout: j.timeout, Storage: j.mem,
	})
	return err
}

// recordingStorage notes when a fetch last succeeded: jwkset replaces the
// keys of its storage only after a fetch and decode succeeded.
type recordingStorage struct {
	jwkset.Storage
	ok    *atomic.Int64
	first chan struct{}
	once  sync.Once
}

func (s *recordingStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := s.Storage.KeyReplaceAll(ctx, given)
	if err == nil {
		s.ok.Store(time.Now().UnixNano())
		if len(given) > 0 {
			s.once.Do(func() { close(s.first) })
		}
	}
	return err
}
