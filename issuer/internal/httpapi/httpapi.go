// Package httpapi is the issuer's HTTP API on Echo v4: the
// browser surface, /oauth/token and /oauth/revoke, and the operations
// endpoints. Every error goes through one table (problem.go).
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Keys is what the API serves about signing keys (keys.Manager).
type Keys interface {
	JWKS() []byte
	PublicKeyPEM() []byte
	Algorithms() []string
}

// Limiter is what the API needs of the rate limits (ratelimit.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key ratelimit.Key) (ratelimit.Decision, error)
}

// rotationLimiter is a Limiter that can take a refresh's decision in the
// session store's first round trip (ratelimit.Limiter.AllowInRotation).
type rotationLimiter interface {
	AllowInRotation(ctx context.Context, key ratelimit.Key) (context.Context, func(context.Context) (ratelimit.Decision, error))
}

// Options configures the API.
type Options struct {
	Service        *auth.Service
	Keys           Keys
	Issuer         string
	RefreshTTL     time.Duration
	CookieSecure   bool
	AllowedOrigins []string
	TrustedProxies []*net.IPNet
	BodyLimit      int64   // default 64 KiB
	Limiter        Limiter // per client network; nil: no limits
	JWKSMaxAge     time.Duration
	// Ready reports, for /readyz, the dependencies that are not usable: by
	// name (the answer shows the names), with the cause (only logged: it
	// may hold addresses and driver messages). Empty when ready.
	Ready    func(context.Context) map[string]error
	Registry *prometheus.Registry // nil: a new one
	// Outcomes, when set, counts the API's logins and registrations
	// (share it with the account pages); nil: new counters in Registry.
	Outcomes *Outcomes
	Logger   *slog.Logger
	Now      func() time.Time
	// Pages, when set, serves the browser pages under PagesPrefix. They
	// get the request id and the client's address (ClientIP) in the
	// request's context, and do their own body limit and cross-origin
	// checks: their errors are pages, not problem documents.
	Pages http.Handler
}

// PagesPrefix is the path under which Options.Pages are served; they
// also serve the sign-in through external providers' OAuthStartPath and
// OAuthCallbackPath.
const (
	PagesPrefix       = "/account/"
	OAuthStartPath    = "/oauth/:provider/start"
	OAuthCallbackPath = "/oauth/:provider/callback"
)

// API is the HTTP handler plus its readiness switch.
type API struct {
	http.Handler
	draining atomic.Bool
}

// Drain turns /readyz off, before a graceful shutdown.
func (a *API) Drain() { a.draining.Store(true) }

type handler struct {
	o   Options
	log *slog.Logger
	api *API

	readyMu     sync.Mutex
	lastFailing string // the dependencies failing at the last /readyz
	m           *metrics
}

// CookieName is the refresh token cookie.
const CookieName = "refresh_token"

// New returns the API.
func New(o Options) *API {
	if o.BodyLimit <= 0 {
		o.BodyLimit = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.JWKSMaxAge <= 0 {
		o.JWKSMaxAge = 5 * time.Minute
	}
	api := &API{}
	h := &handler{o: o, log: o.Logger, api: api, m: newMetrics(o.Registry, o.Outcomes)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = h.errorHandler
	if len(o.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range o.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(h.requestID, h.instrument, middleware.Recover(), h.bodyLimit, h.originCheck)

	e.POST("/register", h.register)
	e.POST("/login", h.login)
	e.POST("/access_token", h.accessToken)
	e.POST("/logout", h.logout)
	e.DELETE("/logout", h.logout)
	e.GET("/me", h.me)
	e.PATCH("/me", h.updateProfile)
	e.DELETE("/me", h.deleteAccount)
	e.POST("/me/password", h.changePassword)
	e.GET("/me/sessions", h.sessions)
	e.DELETE("/me/sessions/:sid", h.revokeSession)
	e.POST("/verify-email", h.verifyEmail)
	e.POST("/verify-email/resend", h.resendVerification)
	e.POST("/password/forgot", h.forgotPassword)
	e.POST("/password/reset", h.resetPassword)
	e.GET("/public_key", h.publicKey)
	e.GET("/.well-known/jwks.json", h.jwks)
	e.GET("/.well-known/openid-configuration", h.openIDConfig)
	e.POST("/oauth/token", h.oauthToken)
	e.POST("/oauth/revoke", h.oauthRevoke)
	e.POST("/oauth/introspect", h.oauthIntrospect)
	h.adminRoutes(e)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", h.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", serveOpenAPI)
	// The sign-in through external OpenID providers: pages too, when the
	// pages are served (without a provider configured, their 404 page).
	e.GET(OAuthStartPath, h.oauthPages)
	e.GET(OAuthCallbackPath, h.oauthPages)
	if o.Pages != nil {
		e.Any(PagesPrefix+"*", h.pages)
		e.GET(strings.TrimSuffix(PagesPrefix, "/"), func(c echo.Context) error {
			return c.Redirect(http.StatusMovedPermanently, PagesPrefix)
		})
	}
	api.Handler = e
	return api
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (h *handler) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDRe.MatchString(id) {
			id = auth.NewID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		r := c.Request()
		ctx := auth.WithCaller(logging.WithRequestID(r.Context(), id), auth.Caller{IP: c.RealIP(), UserAgent: r.UserAgent()})
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// pages serves Options.Pages, with the client's address in the context.
func (h *handler) pages(c echo.Context) error {
	r := c.Request()
	h.o.Pages.ServeHTTP(c.Response(), r.WithContext(context.WithValue(r.Context(), clientIPKey{}, c.RealIP())))
	return nil
}

func (h *handler) oauthPages(c echo.Context) error {
	if h.o.Pages == nil {
		return echo.ErrNotFound
	}
	return h.pages(c)
}

type clientIPKey struct{}

// ClientIP returns the client's address of a request to Options.Pages, as
// the API's rate limits and sessions see it (X-Forwarded-For only behind
// the trusted proxies); "" elsewhere.
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// ownChecks reports whether the request is one the pages check themselves.
func ownChecks(c echo.Context) bool {
	switch c.Path() {
	case PagesPrefix + "*", OAuthStartPath, OAuthCallbackPath:
		return true
	}
	return false
}

func (h *handler) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ownChecks(c) {
			return next(c)
		}
		r := c.Request()
		if r.ContentLength > h.o.BodyLimit {
			return errTooLarge
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, h.o.BodyLimit)
		}
		return next(c)
	}
}

// originCheck refuses a state-changing request (POST, PUT, PATCH, DELETE)
// that a browser sent on behalf of another site: one whose Origin is
// neither the issuer's nor in JOTGUARD_ALLOWED_ORIGINS ("null" included),
// or, without an Origin, whose Sec-Fetch-Site says cross-site. It covers
// requests without cookies too: a cross-site login or registration would
// sign the victim in to the attacker's account (login CSRF). Clients that
// are not browsers send neither header and pass.
func (h *handler) originCheck(next echo.HandlerFunc) echo.HandlerFunc {
	own := originOf(h.o.Issuer)
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if ownChecks(c) {
			return next(c)
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			if strings.EqualFold(r.Header.Get("Sec-Fetch-Site"), "cross-site") {
				return errForeignOrigin
			}
			return next(c)
		}
		origin = strings.TrimRight(origin, "/")
		if strings.EqualFold(origin, own) {
			return next(c)
		}
		for _, o := range h.o.AllowedOrigins {
			if strings.EqualFold(o, origin) {
				return next(c)
			}
		}
		return errForeignOrigin
	}
}

func originOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j]
		}
	}
	return u
}

// readJSON decodes a JSON object whose values, for the named fields, must be
// strings; other fields are ignored and never reach a token. An empty body
// is an empty object when allowEmpty.
func readJSON(c echo.Context, allowEmpty bool, fields ...string) (map[string]string, error) {
	raw, err := readObject(c, allowEmpty)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	v := &auth.ValidationError{}
	for _, f := range fields {
		r, ok := raw[f]
		if !ok || string(r) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			v.Fields = append(v.Fields, auth.FieldError{Field: f, Reason: "must be a string"})
			continue
		}
		out[f] = s
	}
	if len(v.Fields) > 0 {
		return nil, v
	}
	return out, nil
}

// readObject reads a JSON object body as its members; an empty body is an
// empty object when allowEmpty.
func readObject(c echo.Context, allowEmpty bool) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, errMalformed
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return map[string]json.RawMessage{}, nil
		}
		return nil, errMalformed
	}
	// JSON under its own media type only: a browser sends a cross-site
	// text/plain or form body without asking first (CORS preflight), so
	// accepting those would let any site post here.
	if !isJSON(c.Request().Header.Get(echo.HeaderContentType)) {
		return nil, errUnsupportedType
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformed // trailing data
	}
	return raw, nil
}

// isJSON reports application/json or application/*+json, parameters
// (charset) allowed.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// userJSON is the public shape of a user: no secrets.
type userJSON struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Username      string    `json:"username,omitempty"`
	FirstName     string    `json:"first_name,omitempty"`
	LastName      string    `json:"last_name,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	CreatedAt     time.Time `json:"created_at"`
}

func toJSON(u auth.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.ID, Email: u.Email, Username: u.Username, FirstName: u.FirstName,
		LastName: u.LastName, EmailVerified: u.EmailVerified, Roles: roles, CreatedAt: u.CreatedAt}
}

// limit spends one request of class for the client's network (its IPv4
// address or IPv6 /64, from Echo's IP extractor): nil, a
// *auth.RateLimitError (429), or ErrUnavailable when Redis cannot be asked
// and the class fails closed (503).
func (h *handler) limit(c echo.Context, class ratelimit.Class) error {
	if h.o.Limiter == nil {
		return nil
	}
	d, err := h.o.Limiter.Allow(c.Request().Context(), ratelimit.ByNetwork(class, c.RealIP()))
	if err != nil {
		return err
	}
	return d.Err()
}

func (h *handler) register(c echo.Context) error {
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		h.m.outcomes.Registration(err)
		return err
	}
	in, err := readJSON(c, false, "email", "password", "username", "first_name", "last_name")
	if err != nil {
		return err
	}
	u, err := h.o.Service.Register(c.Request().Context(), auth.RegisterInput{Email: in["email"],
		Password: in["password"], Username: in["username"], FirstName: in["first_name"], LastName: in["last_name"]})
	h.m.outcomes.Registration(err)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/me")
	return c.JSON(http.StatusCreated, toJSON(u))
}

func (h *handler) login(c echo.Context) error {
	if err := h.limit(c, ratelimit.Credentials); err != nil {
		h.m.outcomes.Login(err)
		return err
	}
	in, err := readJSON(c, false, "email", "username", "identifier", "password")
	if err != nil {
		return err
	}
	id := in["identifier"]
	if id == "" {
		id = in["email"]
	}
	if id == "" {
		id = in["username"]
	}
	tok, err := h.doLogin(c, id, in["password"])
	if err != nil {
		return err
	}
	return h.tokenResponse(c, tok)
}

// doLogin checks a password; the Service throttles it per account.
func (h *handler) doLogin(c echo.Context, identifier, password string) (auth.Tokens, error) {
	tok, err := h.o.Service.Login(c.Request().Context(), auth.LoginInput{Identifier: identifier, Password: password,
		Network: ratelimit.NetworkOf(c.RealIP()), IP: c.RealIP(), UserAgent: c.Request().UserAgent()})
	h.m.outcomes.Login(err)
	return tok, err
}

// accessToken refreshes. Its rate limit rides in the session store's first
// round trip when the Limiter can do that (one round trip to Redis fewer);
// the answers are those of a limit asked first: a refusal wins over any
// other answer, and a malformed body still spends a unit.
func (h *handler) accessToken(c echo.Context) error {
	ctx, limited, err := h.refreshLimit(c)
	if err != nil { // refused already: a Limiter that cannot ride
		h.m.refreshes.WithLabelValues(outcome(err)).Inc()
		return err
	}
	in, err := readJSON(c, true, "refresh_token")
	if err != nil {
		if lerr := limited(ctx); lerr != nil {
			h.m.refreshes.WithLabelValues(outcome(lerr)).Inc()
			return lerr
		}
		return err
	}
	rt := in["refresh_token"]
	if ck, err := c.Cookie(CookieName); err == nil && ck.Value != "" {
		rt = ck.Value
	}
	tok, err := h.o.Service.Refresh(ctx, rt)
	if lerr := limited(ctx); lerr != nil {
		err = lerr
	}
	h.m.refreshes.WithLabelValues(outcome(err)).Inc()
	if err != nil {
		if errors.Is(err, auth.ErrInvalidRefreshToken) {
			h.clearCookie(c)
		}
		return err
	}
	return h.tokenResponse(c, tok)
}

// refreshLimit starts the decision of the refresh limit for the client's
// network: within the session store's first round trip when the Limiter can
// take it there (rotationLimiter). It returns the context to rotate under,
// and limited, which answers the limit's error then (nil: allowed; a
// *auth.RateLimitError, or ErrUnavailable when the class fails closed).
// Another Limiter decides at once: its refusal is err.
func (h *handler) refreshLimit(c echo.Context) (_ context.Context, limited func(context.Context) error, err error) {
	ctx, none := c.Request().Context(), func(context.Context) error { return nil }
	rl, ok := h.o.Limiter.(rotationLimiter)
	if !ok {
		return ctx, none, h.limit(c, ratelimit.Refresh)
	}
	ctx, decided := rl.AllowInRotation(ctx, ratelimit.ByNetwork(ratelimit.Refresh, c.RealIP()))
	return ctx, func(ctx context.Context) error {
		d, err := decided(ctx)
		if err != nil {
			return err
		}
		return d.Err()
	}, nil
}

func (h *handler) tokenResponse(c echo.Context, tok auth.Tokens) error {
	h.setCookie(c, tok.RefreshToken)
	hdr := c.Response().Header()
	hdr.Set("Authorization", "Bearer "+tok.AccessToken)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, tokenJSON{AccessToken: tok.AccessToken, ExpiresIn: int(tok.ExpiresIn / time.Second),
		TokenType: "Bearer", User: toJSON(tok.User)})
}

// tokenJSON is a token response's body: a struct, not a map, so encoding it
// sorts and boxes nothing (a refresh answers one). Its fields are in the
// order a map's keys were written in, so the bytes are the same.
type tokenJSON struct {
	AccessToken string   `json:"access_token"`
	ExpiresIn   int      `json:"expires_in"`
	TokenType   string   `json:"token_type"`
	User        userJSON `json:"user"`
}

// RefreshCookie is the refresh token cookie that carries value for ttl;
// a ttl ≤ 0 gives the cookie that clears it.
func RefreshCookie(value string, ttl time.Duration, secure bool) *http.Cookie {
	maxAge := int(ttl / time.Second)
	if ttl <= 0 {
		value, maxAge = "", -1
	}
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
}

func (h *handler) setCookie(c echo.Context, value string) {
	c.SetCookie(RefreshCookie(value, h.o.RefreshTTL, h.o.CookieSecure))
}

func (h *handler) clearCookie(c echo.Context) {
	c.SetCookie(RefreshCookie("", 0, h.o.CookieSecure))
}

// bearer returns the token of an "Authorization: Bearer" header, never from
// the URL query.
func bearer(c echo.Context) string {
	a := c.Request().Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func (h *handler) logout(c echo.Context) error {
	in, err := readJSON(c, true, "refresh_token")
	if err != nil {
		return err
	}
	rt := in["refresh_token"]
	if ck, err := c.Cookie(CookieName); err == nil && ck.Value != "" {
		rt = ck.Value
	}
	err = h.o.Service.Logout(c.Request().Context(), auth.LogoutInput{RefreshToken: rt, AccessToken: bearer(c),
		Scope: auth.Scope(c.QueryParam("scope"))})
	h.m.logouts.WithLabelValues(outcome(err)).Inc()
	if err != nil && !errors.Is(err, auth.ErrUnavailable) && !errors.Is(err, auth.ErrInvalidInput) &&
		!errors.Is(err, auth.ErrRateLimited) { // those may be retried with the same token
		h.clearCookie(c)
	}
	if err != nil {
		return err
	}
	h.clearCookie(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) me(c echo.Context) error {
	tok := bearer(c)
	if tok == "" {
		c.Response().Header().Set("WWW-Authenticate", "Bearer")
		return auth.ErrInvalidAccessToken
	}
	u, err := h.o.Service.Me(c.Request().Context(), tok)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidAccessToken) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, toJSON(u))
}

func (h *handler) publicKey(c echo.Context) error {
	return h.keyDocument(c, "application/x-pem-file", h.o.Keys.PublicKeyPEM())
}

func (h *handler) jwks(c echo.Context) error {
	return h.keyDocument(c, "application/json", h.o.Keys.JWKS())
}

// keyDocument serves a public key document, cacheable for JWKSMaxAge; 503
// until the key set is loaded.
func (h *handler) keyDocument(c echo.Context, contentType string, b []byte) error {
	if len(b) == 0 {
		return auth.ErrUnavailable
	}
	c.Response().Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(h.o.JWKSMaxAge/time.Second)))
	return c.Blob(http.StatusOK, contentType, b)
}

func (h *handler) openIDConfig(c echo.Context) error {
	iss := h.o.Issuer
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                        iss,
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"token_endpoint":                                iss + "/oauth/token",
		"revocation_endpoint":                           iss + "/oauth/revoke",
		"introspection_endpoint":                        iss + "/oauth/introspect",
		"userinfo_endpoint":                             iss + "/me",
		"grant_types_supported":                         []string{"password", "refresh_token", "client_credentials"},
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         []string{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported":         h.o.Keys.Algorithms(),
		"access_token_signing_alg_values_supported":     h.o.Keys.Algorithms(),
	})
}

func (h *handler) readyz(c echo.Context) error {
	if h.api.draining.Load() {
		c.Response().Header().Set("Retry-After", "1")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "draining"})
	}
	var failing []string
	if h.o.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		causes := h.o.Ready(ctx)
		failing = slices.Sorted(maps.Keys(causes))
		h.logReadiness(c.Request().Context(), failing, causes)
	}
	if len(failing) > 0 {
		c.Response().Header().Set("Retry-After", "1")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failing": failing})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready"})
}

// logReadiness logs the causes when the set of failing dependencies
// changes, not at every probe.
func (h *handler) logReadiness(ctx context.Context, failing []string, causes map[string]error) {
	key := strings.Join(failing, ",")
	h.readyMu.Lock()
	changed := key != h.lastFailing
	h.lastFailing = key
	h.readyMu.Unlock()
	switch {
	case !changed:
	case len(failing) == 0:
		h.log.InfoContext(ctx, "ready")
	default:
		args := make([]any, 0, 2*len(failing))
		for _, name := range failing {
			args = append(args, name, causes[name].Error())
		}
		h.log.WarnContext(ctx, "not ready", args...)
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return classify(err).Code
}
