// Package authz answers the auth-check requests of reverse proxies:
// Traefik and Caddy's forward auth, nginx's auth_request and Envoy's HTTP
// ext_authz; and RFC 7662 introspection for gateways that speak only that
// (/authz/introspect, sdk.IntrospectionHandler). Each request is a decision: 200 with the identity headers, 401
// with an RFC 6750 challenge, 403 insufficient_scope, 403 without a
// challenge for an ambiguous URI (see reqpath), or 503 when the answer is
// unknown (no signing keys yet, or revocation state unavailable under the
// closed policy). The verification itself is the sdk's; the one mapping of
// its errors to HTTP is sdk.Challenge, through sdk.WriteError.
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/verifier/internal/reqpath"
)

// Paths of the check endpoints.
const (
	ForwardAuthPath = "/authz/forward-auth"
	AuthRequestPath = "/authz/auth-request"
	ExtAuthzPrefix  = "/authz/ext-authz" // Envoy appends the original path
	// IntrospectPath answers RFC 7662 introspection from the local keys and
	// revocation set, for a caller with a service account's token.
	IntrospectPath = "/authz/introspect"
)

// Identity headers of an allowed request (and the only X-Auth-Request-*
// headers an upstream may trust).
const (
	HeaderUser    = "X-Auth-Request-User"    // sub
	HeaderEmail   = "X-Auth-Request-Email"   // email
	HeaderSession = "X-Auth-Request-Session" // sid
	HeaderRoles   = "X-Auth-Request-Roles"   // roles, comma list
)

// TokenVerifier is what a Checker needs; *sdk.Verifier has it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*sdk.Claims, error)
}

var _ TokenVerifier = (*sdk.Verifier)(nil)

// Observer records one decision: its reason (see Reason) and how long it
// took (0 for decisions that verified nothing). The app's metrics implement
// it.
type Observer func(reason string, took time.Duration)

// Options configures a Checker.
type Options struct {
	Verifier      TokenVerifier // required
	RequiredRoles []string      // a token needs one of these; empty: none
	Observe       Observer      // nil: none
	Logger        *slog.Logger  // nil: discard
}

// Checker decides requests. It is safe for concurrent use.
type Checker struct {
	v          TokenVerifier
	roles      []string
	obs        Observer
	log        *slog.Logger
	introspect http.Handler
}

// New returns a Checker.
func New(o Options) (*Checker, error) {
	if o.Verifier == nil {
		return nil, errors.New("authz: Options.Verifier is required")
	}
	if o.Observe == nil {
		o.Observe = func(string, time.Duration) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{v: o.Verifier, roles: slices.Clone(o.RequiredRoles), obs: o.Observe, log: o.Logger,
		introspect: sdk.IntrospectionHandler(o.Verifier)}, nil
}

// Check verifies the bearer token of h and that it holds one of roles (nil:
// the configured ones). It returns the claims, or an error for sdk.Challenge.
// Every call is observed.
func (c *Checker) Check(ctx context.Context, h http.Header, roles []string) (*sdk.Claims, error) {
	start := time.Now()
	claims, err := c.check(ctx, h, roles)
	c.obs(Reason(err), time.Since(start))
	return claims, err
}

func (c *Checker) check(ctx context.Context, h http.Header, roles []string) (*sdk.Claims, error) {
	token, err := sdk.BearerToken(h)
	if err != nil {
		return nil, err
	}
	claims, err := c.v.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if roles == nil {
		roles = c.roles
	}
	if len(roles) > 0 && !slices.ContainsFunc(claims.Roles, func(r string) bool { return slices.Contains(roles, r) }) {
		return nil, fmt.Errorf("%w: needs one of the roles %q", sdk.ErrInsufficientScope, roles)
	}
	return claims, nil
}

// Recheck verifies the bearer token of h again, against the configured
// roles, without recording a decision: the proxy asks it periodically about
// the token of a connection that outlives its request (a websocket).
func (c *Checker) Recheck(ctx context.Context, h http.Header) error {
	_, err := c.check(ctx, h, nil)
	return err
}

// Observe records a decision taken without Check ("public"), with no
// latency.
func (c *Checker) Observe(reason string) { c.obs(reason, 0) }

// reasons name the sdk's sentinels for metrics and logs, in the order
// errors.Is tries them.
var reasons = []struct {
	err  error
	name string
}{
	{sdk.ErrMissingToken, "missing_token"},
	{sdk.ErrTooLarge, "too_large"},
	{sdk.ErrMalformed, "malformed"},
	{sdk.ErrWrongType, "wrong_type"},
	{sdk.ErrUnsupportedAlg, "unsupported_alg"},
	{sdk.ErrUnknownKey, "unknown_key"},
	{sdk.ErrSignature, "bad_signature"},
	{sdk.ErrExpired, "expired"},
	{sdk.ErrNotYetValid, "not_yet_valid"},
	{sdk.ErrWrongIssuer, "wrong_issuer"},
	{sdk.ErrWrongAudience, "wrong_audience"},
	{sdk.ErrRevoked, "revoked"},
	{sdk.ErrRevocationUnavailable, "revocation_unavailable"},
	{sdk.ErrNotReady, "not_ready"},
	{sdk.ErrInsufficientScope, "insufficient_scope"},
	{sdk.ErrInvalid, "invalid"},
	{reqpath.ErrAmbiguous, "ambiguous_path"},
}

// Reasons lists every value Reason returns, for metrics to pre-create.
func Reasons() []string {
	out := []string{"allowed", "public"}
	for _, r := range reasons {
		out = append(out, r.name)
	}
	return append(out, "other")
}

// Reason names err for metrics: "allowed" for nil, the sentinel's name, or
// "other".
func Reason(err error) string {
	if err == nil {
		return "allowed"
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

// SetIdentity sets the four identity headers from c, replacing any value.
// A nil c sets them empty, which makes Envoy and Traefik overwrite (and
// nginx's proxy_set_header drop) whatever the client sent. The email
// header carries only a verified address: an upstream that keys on it
// must not meet an address that anyone could have typed at registration.
func SetIdentity(h http.Header, c *sdk.Claims) {
	if c == nil {
		h[HeaderUser], h[HeaderEmail], h[HeaderSession], h[HeaderRoles] = empty, empty, empty, empty
		return
	}
	h[HeaderUser] = []string{c.Subject}
	h[HeaderEmail] = empty
	if c.EmailVerified {
		h[HeaderEmail] = []string{c.Email}
	}
	h[HeaderSession] = []string{c.SessionID}
	h[HeaderRoles] = []string{strings.Join(c.Roles, ",")}
}

var empty = []string{""}

// IsIdentityHeader reports whether name is one of the X-Auth-Request-*
// family, ignoring case and treating '_' as '-' (some servers fold both to
// the same CGI variable), so a spoofed variant is caught too.
func IsIdentityHeader(name string) bool {
	const prefix = "x-auth-request-"
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		b := name[i]
		if b == '_' {
			b = '-'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != prefix[i] {
			return false
		}
	}
	return true
}

// Match reports whether path is one of the check endpoints.
func Match(path string) bool {
	switch {
	case path == ForwardAuthPath, path == AuthRequestPath:
		return true
	case strings.HasPrefix(path, ExtAuthzPrefix):
		return len(path) == len(ExtAuthzPrefix) || path[len(ExtAuthzPrefix)] == '/'
	}
	return false
}

// ServeHTTP serves the three check endpoints (any method: the proxies send
// the original one), the introspection endpoint (POST) and 404 elsewhere. It does not use http.ServeMux, which
// would answer a non-canonical original path appended by Envoy with a
// redirect instead of a decision.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == ForwardAuthPath:
		c.forwardAuth(w, r)
	case p == AuthRequestPath:
		c.authRequest(w, r)
	case p == IntrospectPath:
		c.introspect.ServeHTTP(w, r)
	case Match(p):
		c.extAuthz(w, r)
	default:
		http.NotFound(w, r)
	}
}

// forwardAuth: Traefik and Caddy send the original request's headers with
// X-Forwarded-Method, -Uri and -Host; the check URL's ?roles= (set in the
// proxy's configuration, never by the client) overrides the required roles.
func (c *Checker) forwardAuth(w http.ResponseWriter, r *http.Request) {
	c.decide(w, r, r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Forwarded-Uri"), queryRoles(r))
}

// authRequest: nginx's auth_request subrequest, with X-Original-Method and
// X-Original-URI set by the configuration.
func (c *Checker) authRequest(w http.ResponseWriter, r *http.Request) {
	c.decide(w, r, r.Header.Get("X-Original-Method"), r.Header.Get("X-Original-URI"), queryRoles(r))
}

// extAuthz: Envoy's HTTP ext_authz sends the original method and the
// original path after the prefix; its query is the client's, so only the
// configured roles apply.
func (c *Checker) extAuthz(w http.ResponseWriter, r *http.Request) {
	orig := strings.TrimPrefix(r.URL.RequestURI(), ExtAuthzPrefix)
	if orig == "" {
		orig = "/"
	}
	c.decide(w, r, r.Method, orig, nil)
}

// decide answers a check request about method and uri. An ambiguous uri is
// denied before the token is looked at: the proxy in front would forward
// it to an upstream that may read another path than the one allowed.
func (c *Checker) decide(w http.ResponseWriter, r *http.Request, method, uri string, roles []string) {
	if err := reqpath.CheckURI(uri); err != nil {
		c.RefusePath(w, r, err, uri, http.StatusForbidden)
		return
	}
	claims, err := c.Check(r.Context(), r.Header, roles)
	if err != nil {
		if c.log.Enabled(r.Context(), slog.LevelDebug) {
			c.log.DebugContext(r.Context(), "denied", "method", method, "uri", uri, "reason", Reason(err), "err", err)
		}
		sdk.WriteError(w, r, err)
		return
	}
	SetIdentity(w.Header(), claims)
	w.WriteHeader(http.StatusOK)
}

// RefusePath answers a request whose path is ambiguous (err from reqpath)
// with status and no challenge: a token would not make it acceptable. The
// check endpoints answer 403, the one denial that nginx, Traefik and Envoy
// all pass on to the client as it is (nginx turns a 400 from an auth
// subrequest into a 500); the proxy answers its client 400. The path is
// logged at debug only: it is the client's input.
func (c *Checker) RefusePath(w http.ResponseWriter, r *http.Request, err error, path string, status int) {
	c.obs(Reason(err), 0)
	if c.log.Enabled(r.Context(), slog.LevelDebug) {
		c.log.DebugContext(r.Context(), "ambiguous path refused", "path", path, "status", status, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status)+": ambiguous request path", status)
}

// queryRoles reads ?roles=a,b from the check request's own URL; nil when
// absent.
func queryRoles(r *http.Request) []string {
	if r.URL.RawQuery == "" {
		return nil
	}
	v := r.URL.Query().Get("roles")
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
