package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	Issuer   string   // exact "iss"
	Audience []string // "aud" must hold one of these
	// Keys supplies the issuer's public keys. nil: the issuer's JWKS over
	// HTTP at JWKSURL, refreshed in the background (JWKSURL, Discover,
	// JWKSRefresh and UnknownKIDWait configure it and must stay unset
	// otherwise).
	Keys    KeySource
	JWKSURL string // default Issuer + "/.well-known/jwks.json", or discovered
	// Discover, when JWKSURL is empty, takes jwks_uri from the issuer's
	// /.well-known/openid-configuration (whose issuer must equal Issuer).
	// An unreachable issuer falls back to the default path.
	Discover   bool
	Algorithms []string      // default ES256, EdDSA, RS256; HS* and none are refused
	Leeway     time.Duration // default 30s
	// MaxTokenLifetime is the longest access-token lifetime (exp - iat)
	// accepted, beyond Leeway: the issuer's JOTGUARD_ACCESS_TTL, or more.
	// Default 5m. A revocation source must keep every revocation at least
	// MaxTokenLifetime + 2×Leeway (see EventTrust.Retention), so no token
	// it revoked can become valid again; NewVerifier checks it.
	MaxTokenLifetime time.Duration
	// Revocations says which tokens were revoked; nil: no revocation check.
	// A RevocationSource (kafkafeed.Feed) is run by NewVerifier with this
	// Verifier's keys, issuer, audiences and algorithms until NewVerifier's
	// context is done.
	Revocations RevocationChecker
	Now         func() time.Time // default time.Now; tests set it
	Logger      *slog.Logger     // where the sdk logs; nil: slog.Default()

	// CacheSize is how many verified tokens are kept until their exp, so
	// a repeated token skips the signature check (expiry and revocation
	// are still checked on every call). 0: no cache; DefaultCacheSize is a
	// good start.
	CacheSize      int
	JWKSRefresh    time.Duration // background JWKS refresh, default 5m
	UnknownKIDWait time.Duration // longest an unknown kid holds Verify, default 1s
}

// DefaultCacheSize is a verified-token cache size that suits most services.
const DefaultCacheSize = 10000

// DefaultMaxTokenLifetime is the issuer's default access-token lifetime.
const DefaultMaxTokenLifetime = 5 * time.Minute

// Retention is how long a revocation must be kept so that no token it
// revoked is accepted again: a token issued at or before the revocation
// expires at most maxLifetime + leeway after it, and is accepted up to
// leeway past that.
func Retention(maxLifetime, leeway time.Duration) time.Duration { return maxLifetime + 2*leeway }

// RevocationChecker is what Verify needs; revocation.Set and kafkafeed.Feed have it.
type RevocationChecker interface {
	Revoked(c *Claims) (bool, error) // an error means "unknown"
}

// DefaultAlgorithms are the algorithms a Verifier accepts unless told otherwise.
var DefaultAlgorithms = []string{"ES256", "EdDSA", "RS256"}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	parser  *jwt.Parser
	keys    KeySource
	cache   *tokenCache // nil: disabled
	revoked RevocationChecker
	now     func() time.Time
}

// NewVerifier returns a Verifier. Its background work (the JWKS refresh, and
// the revocation source when Config.Revocations is one) runs until ctx is
// done: pass the process's root context, not a request's.
//
// An unreachable JWKS is not an error: the Verifier starts without keys,
// Ready and Verify report ErrNotReady, and it fetches the key set with
// backoff until the issuer answers. The first fetch, done here, waits at
// most 5 s (or UnknownKIDWait if longer) for an issuer that does not answer.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("sdk: Config.Issuer is required")
	case len(cfg.Audience) == 0 || slices.Contains(cfg.Audience, ""):
		return nil, errors.New("sdk: Config.Audience is required and has no empty entry")
	case cfg.Leeway < 0:
		return nil, errors.New("sdk: Config.Leeway is negative")
	case cfg.MaxTokenLifetime < 0:
		return nil, errors.New("sdk: Config.MaxTokenLifetime is negative")
	case cfg.CacheSize < 0:
		return nil, errors.New("sdk: Config.CacheSize is negative (0 turns the cache off)")
	case cfg.Keys != nil && (cfg.JWKSURL != "" || cfg.Discover || cfg.JWKSRefresh != 0 || cfg.UnknownKIDWait != 0):
		return nil, errors.New("sdk: Config.Keys is set: JWKSURL, Discover, JWKSRefresh and UnknownKIDWait configure the default JWKS source only")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Keys == nil && cfg.JWKSURL == "" && cfg.Discover {
		switch u, err := discoverJWKS(ctx, http.DefaultClient, cfg.Issuer); {
		case errors.Is(err, errDiscoveryMismatch):
			return nil, err // a misconfiguration, not an outage
		case err != nil: // issuer unreachable: a cold start, not a failure
			cfg.Logger.WarnContext(ctx, "issuer discovery failed; using the default JWKS path", "err", err)
		default:
			cfg.JWKSURL = u
		}
	}
	if cfg.Keys == nil && cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	for _, alg := range cfg.Algorithms {
		if alg == "" || strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS") ||
			jwt.GetSigningMethod(alg) == nil {
			return nil, fmt.Errorf("sdk: Config.Algorithms: %q is not allowed (asymmetric JWS algorithms only)", alg)
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MaxTokenLifetime == 0 {
		cfg.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if r, ok := cfg.Revocations.(interface{ Retention() time.Duration }); ok {
		if got, need := r.Retention(), Retention(cfg.MaxTokenLifetime, cfg.Leeway); got < need {
			return nil, fmt.Errorf("sdk: Config.Revocations keeps revocations for %s, less than the %s a token may "+
				"stay valid (MaxTokenLifetime %s + 2 × Leeway %s): a revoked token would be accepted again",
				got, need, cfg.MaxTokenLifetime, cfg.Leeway)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = 5 * time.Minute
	}
	if cfg.UnknownKIDWait <= 0 {
		cfg.UnknownKIDWait = time.Second
	}
	keys := cfg.Keys
	if keys == nil {
		j, err := newJWKS(ctx, cfg)
		if err != nil {
			return nil, err
		}
		keys = j
	}
	v := &Verifier{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithStrictDecoding(), // no padding (the default), canonical base64url only
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience...), // any one of them
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Now),
			// The alg is checked against cfg.Algorithms by keyfunc, which
			// reports ErrUnsupportedAlg rather than a signature error.
		),
		keys:    keys,
		revoked: cfg.Revocations,
		now:     cfg.Now,
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	if src, ok := cfg.Revocations.(RevocationSource); ok {
		go func() {
			if err := src.Run(ctx, v.EventTrust()); err != nil {
				cfg.Logger.ErrorContext(ctx, "revocation source stopped", "err", err)
			}
		}()
	}
	return v, nil
}

// Ready returns nil once signing keys are loaded and the revocation source,
// if Config.Revocations is one, can answer; before, an error wrapping
// ErrNotReady or the source's error.
func (v *Verifier) Ready() error {
	if err := v.keys.Ready(); err != nil {
		return err
	}
	if src, ok := v.revoked.(RevocationSource); ok {
		return src.Ready()
	}
	return nil
}

// Keys is the Verifier's key source.
func (v *Verifier) Keys() KeySource { return v.keys }

// EventTrust is what authenticates revocation events for this Verifier: its
// keys, issuer, audiences and algorithms.
func (v *Verifier) EventTrust() EventTrust {
	return EventTrust{Keys: v.keys, Issuer: v.cfg.Issuer, Audience: slices.Clone(v.cfg.Audience),
		Algorithms: slices.Clone(v.cfg.Algorithms), Retention: Retention(v.cfg.MaxTokenLifetime, v.cfg.Leeway)}
}

// JWKSAge is the time since the key set was last fetched successfully, or
// since NewVerifier when it never was: a metric that grows while the issuer
// is unreachable. It is 0 for a key source other than the JWKS over HTTP.
func (v *Verifier) JWKSAge() time.Duration {
	if j, ok := v.keys.(*jwks); ok {
		return j.age()
	}
	return 0
}

// Verify checks an access token and returns its claims. Its
// errors wrap exactly one of the Err* sentinels and their cause; the claims
// are nil whenever the error is not.
//
// A token verified before is served from a bounded cache until its exp (no
// leeway); the revocation check and the expiry check run on every call.
// The returned Claims is the caller's own copy, but its slices (Audience,
// Roles) may be shared with the cache: do not modify their elements.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, ErrMissingToken
	case len(token) > MaxTokenSize:
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(token), MaxTokenSize)
	}
	if v.cache != nil {
		if c, ok := v.cache.get(token, v.now()); ok {
			return v.checkRevoked(c)
		}
	}
	if err := compactShape(token); err != nil {
		return nil, err
	}
	c := new(Claims)
	if _, err := v.parser.ParseWithClaims(token, c, v.keyfunc(ctx)); err != nil {
		return nil, classify(err)
	}
	// A token that lives longer than configured could outlive the
	// revocations kept for it.
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life > v.cfg.MaxTokenLifetime+v.cfg.Leeway {
		return nil, fmt.Errorf("%w: lifetime %s exceeds the maximum %s + leeway %s",
			ErrInvalid, life, v.cfg.MaxTokenLifetime, v.cfg.Leeway)
	}
	if _, err := v.checkRevoked(c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(token, c, v.now())
	}
	return c, nil
}

func (v *Verifier) checkRevoked(c *Claims) (*Claims, error) {
	if v.revoked == nil {
		return c, nil
	}
	switch revoked, err := v.revoked.Revoked(c); {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrRevocationUnavailable, err)
	case revoked:
		return nil, ErrRevoked
	}
	return c, nil
}

// compactShape accepts exactly three non-empty base64url segments. The
// decoder would skip CR and LF and the parser would accept an empty
// signature only to fail later: this says "malformed" first, in one pass.
func compactShape(token string) error {
	dots := 0
	last := -1
	for i := 0; i < len(token); i++ {
		switch b := token[i]; {
		case b == '.':
			if i == last+1 {
				return fmt.Errorf("%w: empty segment", ErrMalformed)
			}
			dots++
			last = i
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return fmt.Errorf("%w: byte %d is not base64url", ErrMalformed, i)
		}
	}
	switch {
	case dots != 2:
		return fmt.Errorf("%w: %d segments, want 3", ErrMalformed, dots+1)
	case last == len(token)-1:
		return fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	return nil
}

// forbiddenHeaders are JOSE header parameters a jotguard token never has:
// crit (we understand no extension), and keys or key URLs supplied by the
// token itself, which would let it choose its own verification key.
var forbiddenHeaders = []string{"crit", "jwk", "jku", "x5u", "x5c"}

// keyfunc checks the header, then asks the JWKS for the key.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
			return nil, fmt.Errorf("%w: typ %.40q", ErrWrongType, typ)
		}
		for _, h := range forbiddenHeaders {
			if _, ok := t.Header[h]; ok {
				return nil, fmt.Errorf("%w: header %q is not allowed", ErrMalformed, h)
			}
		}
		alg, _ := t.Header["alg"].(string)
		if !slices.Contains(v.cfg.Algorithms, alg) {
			return nil, fmt.Errorf("%w: alg %.40q", ErrUnsupportedAlg, alg)
		}
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, fmt.Errorf("%w: no kid", ErrUnknownKey)
		}
		return v.keys.Key(ctx, t) // its errors carry ErrUnknownKey or ErrNotReady
	}
}
