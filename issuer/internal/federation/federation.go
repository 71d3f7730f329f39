// Package federation signs people in with external OpenID Connect
// providers (Google, Microsoft Entra ID, Okta, Keycloak…): the
// authorization code flow with PKCE (S256), its state, nonce and code
// verifier bound to the browser in a sealed, short-lived cookie, discovery
// and ID token verification by github.com/coreos/go-oidc on
// golang.org/x/oauth2. It hands the auth.Service what the provider
// vouches for (an auth.ExternalIdentity); which user that is, the Service
// decides. It renders nothing: the account pages do.
package federation

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"golang.org/x/oauth2"
)

// Kinds of failure; every error of Finish wraps one, inside a *Failure.
var (
	// ErrUnknownProvider: no provider of that name is configured.
	ErrUnknownProvider = errors.New("federation: unknown provider")
	// ErrUnavailable: the provider could not be reached or answered
	// nonsense (discovery, the token endpoint): worth a retry later.
	ErrUnavailable = errors.New("federation: the provider is unavailable")
	// ErrDenied: the provider sent the browser back with an error
	// (the person cancelled, or the provider refused).
	ErrDenied = errors.New("federation: the provider did not sign the person in")
	// ErrRejected: the answer does not belong to a sign-in this browser
	// started, or the provider's tokens do not check out: a forged or
	// replayed callback, an expired flow, a bad ID token.
	ErrRejected = errors.New("federation: the sign-in was rejected")
)

// Failure is why a sign-in through a provider failed. Reason is a fixed
// word (the audit log's and the logs' detail); errors.Is finds the kind.
type Failure struct {
	Provider string
	Reason   string
	kind     error
	err      error // the cause, for logs; may hold the provider's text
}

func (f *Failure) Error() string {
	if f.err != nil {
		return fmt.Sprintf("%v (%s): %s: %v", f.kind, f.Provider, f.Reason, f.err)
	}
	return fmt.Sprintf("%v (%s): %s", f.kind, f.Provider, f.Reason)
}

// Unwrap gives the kind and the cause.
func (f *Failure) Unwrap() []error { return []error{f.kind, f.err} }

func fail(provider string, kind error, reason string, cause error) *Failure {
	return &Failure{Provider: provider, Reason: reason, kind: kind, err: cause}
}

// ProviderConfig is one provider.
type ProviderConfig struct {
	// Name is the provider's name in paths (/oauth/<name>/start) and in
	// the links stored on users: 1 to 32 of a-z, 0-9 and '-'. Renaming a
	// provider unlinks its users.
	Name string
	// DisplayName is what the pages show: "Sign in with DisplayName".
	DisplayName string
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document (Issuer + /.well-known/openid-configuration) states it.
	Issuer       string
	ClientID     string
	ClientSecret string   // "" for a public client: PKCE alone
	Scopes       []string // default openid, email, profile; openid is always asked for
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// CheckName reports whether name may name a provider.
func CheckName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("provider name %q: want 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit", name)
	}
	return nil
}

// Config configures a Federation.
type Config struct {
	Providers []ProviderConfig
	// PublicURL is the base of the redirect URIs: PublicURL +
	// /oauth/<name>/callback, registered at each provider.
	PublicURL string
	// Key (32 bytes, JOTGUARD_KEY_ENCRYPTION_KEY) derives the key that
	// seals the flow cookies: every replica must have the same.
	Key          []byte
	CookieSecure bool
	// Leeway is the clock skew allowed on an ID token's expiry.
	Leeway time.Duration
	// HTTPClient talks to the providers; default: one with a 10 s
	// timeout.
	HTTPClient *http.Client
	Now        func() time.Time
}

// FlowTTL is how long a sign-in may take at the provider.
const FlowTTL = 10 * time.Minute

// Federation runs the sign-ins through the configured providers.
type Federation struct {
	cfg       Config
	providers map[string]*provider
	order     []string
	seal      *sealer
}

// provider is one configured provider and, once discovered, its endpoints
// and ID token verifier.
type provider struct {
	cfg      ProviderConfig
	redirect string

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// New checks the configuration. Discovery happens at the first sign-in
// of each provider (and again after a failure), so a provider that is
// down does not stop the issuer: Check tries them at start.
func New(cfg Config) (*Federation, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || (pub.Scheme != "https" && pub.Scheme != "http") || pub.Host == "" {
		return nil, fmt.Errorf("federation: public URL %q: want an http(s) URL", cfg.PublicURL)
	}
	seal, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	f := &Federation{cfg: cfg, providers: map[string]*provider{}, seal: seal}
	for _, pc := range cfg.Providers {
		if err := CheckName(pc.Name); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
		if _, dup := f.providers[pc.Name]; dup {
			return nil, fmt.Errorf("federation: provider %q is configured twice", pc.Name)
		}
		if pc.ClientID == "" {
			return nil, fmt.Errorf("federation: provider %q: client_id is required", pc.Name)
		}
		if pc.DisplayName == "" {
			pc.DisplayName = pc.Name
		}
		if len(pc.Scopes) == 0 {
			pc.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
		}
		if !slices.Contains(pc.Scopes, oidc.ScopeOpenID) {
			pc.Scopes = append([]string{oidc.ScopeOpenID}, pc.Scopes...)
		}
		f.providers[pc.Name] = &provider{cfg: pc,
			redirect: strings.TrimRight(cfg.PublicURL, "/") + CallbackPath(pc.Name)}
		f.order = append(f.order, pc.Name)
	}
	return f, nil
}

// StartPath and CallbackPath are where a provider's sign-in starts and
// where the provider sends the browser back (the redirect URI's path).
func StartPath(name string) string    { return "/oauth/" + name + "/start" }
func CallbackPath(name string) string { return "/oauth/" + name + "/callback" }

// Provider is a configured provider as the pages show it.
type Provider struct {
	Name        string
	DisplayName string
	RedirectURI string
}

// Providers lists the providers in the configured order.
func (f *Federation) Providers() []Provider {
	out := make([]Provider, 0, len(f.order))
	for _, n := range f.order {
		p := f.providers[n]
		out = append(out, Provider{Name: n, DisplayName: p.cfg.DisplayName, RedirectURI: p.redirect})
	}
	return out
}

// Check discovers every provider now and returns the failures by name.
func (f *Federation) Check(ctx context.Context) map[string]error {
	out := map[string]error{}
	for _, n := range f.order {
		if _, _, err := f.providers[n].discover(ctx, f.cfg.HTTPClient, f.cfg.Leeway, f.cfg.Now); err != nil {
			out[n] = err
		}
	}
	return out
}

// discover returns the provider's OAuth 2 configuration and ID token
// verifier, fetching its discovery document the first time (and after a
// failure).
func (p *provider) discover(ctx context.Context, client *http.Client, leeway time.Duration, now func() time.Time) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oauth != nil {
		return p.oauth, p.verifier, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	op, err := oidc.NewProvider(oidc.ClientContext(dctx, client), p.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery at %s: %w", p.cfg.Issuer, err)
	}
	p.oauth = &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
		Endpoint: op.Endpoint(), RedirectURL: p.redirect, Scopes: p.cfg.Scopes}
	p.verifier = op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID,
		Now: func() time.Time { return now().Add(-leeway) }})
	return p.oauth, p.verifier, nil
}

// flow is what the flow cookie holds between Start and Finish.
type flow struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // the PKCE code verifier
	Expires  int64  `json:"e"` // Unix seconds
}

// flowCookie names the flow cookie of a provider: one flow per provider
// and browser at a time.
func flowCookie(name string) string { return "jotguard_oidc_" + name }

// Start begins a sign-in through provider name: it sets the flow cookie
// on w and returns the provider's authorization URL to send the browser
// to.
func (f *Federation) Start(ctx context.Context, w http.ResponseWriter, name string) (string, error) {
	p, ok := f.providers[name]
	if !ok {
		return "", fail(name, ErrUnknownProvider, "unknown_provider", nil)
	}
	oc, _, err := p.discover(ctx, f.cfg.HTTPClient, f.cfg.Leeway, f.cfg.Now)
	if err != nil {
		return "", fail(name, ErrUnavailable, "discovery_failed", err)
	}
	fl := flow{Provider: name, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Expires: f.cfg.Now().Add(FlowTTL).Unix()}
	value, err := f.seal.seal(flowCookie(name), fl)
	if err != nil {
		return "", err
	}
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, and the cookie must come with it.
	http.SetCookie(w, &http.Cookie{Name: flowCookie(name), Value: value, Path: "/oauth/" + name + "/",
		MaxAge: int(FlowTTL / time.Second), HttpOnly: true, Secure: f.cfg.CookieSecure, SameSite: http.SameSiteLaxMode})
	return oc.AuthCodeURL(fl.State, oauth2.S256ChallengeOption(fl.Verifier), oidc.Nonce(fl.Nonce)), nil
}

// errorCode keeps an OAuth error code from the query only if it has the
// form of one: it is logged and shown.
var errorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// Finish completes a sign-in through provider name on its callback
// request r: the flow cookie (used up: it is cleared on w whatever the
// outcome) must match the state, the code is exchanged with the PKCE
// verifier, and the ID token must be signed by the provider for this
// client, unexpired and carry the flow's nonce. It returns what the
// provider vouches for.
func (f *Federation) Finish(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) (auth.ExternalIdentity, error) {
	p, ok := f.providers[name]
	if !ok {
		return auth.ExternalIdentity{}, fail(name, ErrUnknownProvider, "unknown_provider", nil)
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie(name), Path: "/oauth/" + name + "/", MaxAge: -1,
		HttpOnly: true, Secure: f.cfg.CookieSecure, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if !errorCode.MatchString(e) {
			e = "invalid"
		}
		return auth.ExternalIdentity{}, fail(name, ErrDenied, "provider_error", fmt.Errorf("error=%s", e))
	}
	c, err := r.Cookie(flowCookie(name))
	if err != nil || c.Value == "" {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "no_flow", errors.New("no flow cookie: expired, used, or started in another browser"))
	}
	var fl flow
	if err := f.seal.open(flowCookie(name), c.Value, &fl); err != nil || fl.Provider != name {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "forged_flow", err)
	}
	if f.cfg.Now().Unix() > fl.Expires {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "flow_expired", nil)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(fl.State)) != 1 {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "state_mismatch", nil)
	}
	code := q.Get("code")
	if code == "" {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "no_code", nil)
	}
	oc, verifier, err := p.discover(ctx, f.cfg.HTTPClient, f.cfg.Leeway, f.cfg.Now)
	if err != nil {
		return auth.ExternalIdentity{}, fail(name, ErrUnavailable, "discovery_failed", err)
	}
	tok, err := oc.Exchange(oidc.ClientContext(ctx, f.cfg.HTTPClient), code, oauth2.VerifierOption(fl.Verifier))
	if err != nil {
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok && !serverError(err) {
			// invalid_grant: a code used before, expired, issued to
			// another client or for another verifier.
			return auth.ExternalIdentity{}, fail(name, ErrRejected, "code_rejected", err)
		}
		return auth.ExternalIdentity{}, fail(name, ErrUnavailable, "token_endpoint_failed", err)
	}
	return f.identity(ctx, p, verifier, tok, fl.Nonce)
}

// serverError reports a token endpoint that failed on its side (5xx).
func serverError(err error) bool {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	return ok && re.Response != nil && re.Response.StatusCode >= 500
}

// identity verifies the ID token of tok and reads the identity from it.
func (f *Federation) identity(ctx context.Context, p *provider, verifier *oidc.IDTokenVerifier, tok *oauth2.Token, nonce string) (auth.ExternalIdentity, error) {
	name := p.cfg.Name
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "no_id_token", nil)
	}
	idt, err := verifier.Verify(oidc.ClientContext(ctx, f.cfg.HTTPClient), raw)
	if err != nil {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, idTokenReason(err), err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "nonce_mismatch", nil)
	}
	var c struct {
		AuthorizedParty string          `json:"azp"`
		Email           string          `json:"email"`
		EmailVerified   json.RawMessage `json:"email_verified"`
		GivenName       string          `json:"given_name"`
		FamilyName      string          `json:"family_name"`
	}
	if err := idt.Claims(&c); err != nil {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "id_token_invalid", err)
	}
	// OpenID Connect Core 3.1.3.7: with several audiences the token must
	// name this client as the party it was issued to.
	if (len(idt.Audience) > 1 || c.AuthorizedParty != "") && c.AuthorizedParty != p.cfg.ClientID {
		return auth.ExternalIdentity{}, fail(name, ErrRejected, "id_token_audience",
			fmt.Errorf("azp %q with audiences %q", c.AuthorizedParty, idt.Audience))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return auth.ExternalIdentity{}, fail(name, ErrRejected, "id_token_invalid", err)
		}
	}
	return auth.ExternalIdentity{Provider: name, Subject: idt.Subject, Email: c.Email,
		EmailVerified: trueClaim(c.EmailVerified), FirstName: c.GivenName, LastName: c.FamilyName}, nil
}

// trueClaim reads a boolean claim: true, or the string "true" as some
// providers send it. Anything else is false.
func trueClaim(raw json.RawMessage) bool {
	s := strings.Trim(string(raw), `"`)
	return s == "true"
}

// idTokenReason names what go-oidc refused in an ID token.
func idTokenReason(err error) string {
	if _, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
		return "id_token_expired"
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "expected audience"):
		return "id_token_audience"
	case strings.Contains(msg, "issued by a different provider"):
		return "id_token_issuer"
	}
	return "id_token_invalid"
}

// random is 256 random bits, base64url.
func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
