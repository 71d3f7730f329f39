package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"golang.org/x/oauth2"
)

// The sign-in through an external OpenID provider is tested against a real
// one: the dev stack's Ory Hydra (JOTGUARD_HYDRA_URL), whose sign-in page
// signs in as whoever the test says, with the address and email_verified
// it chooses. Each test registers its own Hydra client
// (testenv.HydraClient).

// startFederatedIssuer starts an issuer on a port known beforehand (the
// redirect URI registered at Hydra names it) with the provider "dev".
func startFederatedIssuer(t *testing.T, settings ...string) *issuer {
	t.Helper()
	env, _ := federatedEnv(t, settings...)
	return startIssuer(t, env)
}

// hydraClient is a client registered at Hydra.
type hydraClient struct{ issuer, id, secret, redirect string }

// federatedEnv registers the provider "dev" at Hydra for an issuer on a
// port known beforehand, and returns the issuer's settings and the client.
func federatedEnv(t *testing.T, settings ...string) (map[string]string, hydraClient) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	c := hydraClient{redirect: "http://" + addr + "/oauth/dev/callback"}
	c.issuer, c.id, c.secret = testenv.HydraClient(t, c.redirect)
	providers, _ := json.Marshal([]map[string]string{{"name": "dev", "display_name": "Dev provider",
		"issuer": c.issuer, "client_id": c.id, "client_secret": c.secret}})
	env := map[string]string{"JOTGUARD_ISSUER_ADDR": addr, "JOTGUARD_PUBLIC_URL": "http://" + addr,
		"JOTGUARD_KEY_ENCRYPTION_KEY": testKEK, "JOTGUARD_COOKIE_SECURE": "false",
		"JOTGUARD_OIDC_PROVIDERS": string(providers)}
	for i := 0; i+1 < len(settings); i += 2 {
		env[settings[i]] = settings[i+1]
	}
	return env, c
}

// browser is a person's browser: cookies, and redirects followed.
type browser struct {
	t      *testing.T
	s      *issuer
	c      *http.Client
	jar    *cookiejar.Jar
	stopAt string // a path at which redirects stop being followed
}

func newBrowser(t *testing.T, s *issuer) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, s: s, jar: jar}
	b.c = &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stopAt != "" && req.URL.Path == b.stopAt {
			return http.ErrUseLastResponse
		}
		if len(via) > 15 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// get GETs u (relative: the issuer's) and follows the redirects.
func (b *browser) get(u string) resp {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.s.base + u
	}
	r, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return b.read(r)
}

func (b *browser) post(u string, v url.Values) resp {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.s.base + u
	}
	r, err := b.c.PostForm(u, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return b.read(r)
}

// read reads the last answer of a request; the issuer's are checked
// against the OpenAPI document.
func (b *browser) read(r *http.Response) resp {
	b.t.Helper()
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if strings.HasPrefix(r.Request.URL.String(), b.s.base+"/") {
		checkOpenAPI(b.t, r.Request, r, body)
	}
	return resp{Response: r, body: body}
}

// cookie is the browser's cookie name for the issuer's path.
func (b *browser) cookie(name, path string) string {
	u, _ := url.Parse(b.s.base + path)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// person is who signs in at the provider.
type person struct {
	subject, email string
	verified       bool
}

var challengeRe = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// atProvider starts a sign-in with "Sign in with Dev provider" and signs
// in at the provider as who; it returns the answer after the provider's
// redirect back (or at stopAt).
func (b *browser) atProvider(who person) resp {
	b.t.Helper()
	return b.atHydra(b.get("/oauth/dev/start"), who)
}

// atHydra signs in as who on page, Hydra's sign-in page.
func (b *browser) atHydra(page resp, who person) resp {
	b.t.Helper()
	m := challengeRe.FindSubmatch(page.body)
	if page.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("the provider's sign-in page: %d %s\n%.400s", page.StatusCode, page.Request.URL, page.body)
	}
	v := url.Values{"challenge": {string(m[1])}, "email": {who.email}, "subject": {who.subject}, "action": {"accept"}}
	if who.verified {
		v.Set("email_verified", "true")
	}
	return b.post(page.Request.URL.Scheme+"://"+page.Request.URL.Host+"/login", v)
}

// signIn signs in through the provider to the account page and returns
// the account's access token.
func (b *browser) signIn(who person) string {
	b.t.Helper()
	r := b.atProvider(who)
	if r.StatusCode != http.StatusOK || r.Request.URL.Path != "/oauth/dev/callback" ||
		!strings.Contains(string(r.body), `http-equiv="refresh" content="0; url=/account/"`) {
		b.t.Fatalf("back from the provider: %d %s\n%.600s", r.StatusCode, r.Request.URL, r.body)
	}
	page := b.get("/account/")
	if page.StatusCode != http.StatusOK || page.Request.URL.Path != "/account/" || !strings.Contains(string(page.body), "Your account") {
		b.t.Fatalf("account page after the sign-in: %d %s\n%.600s", page.StatusCode, page.Request.URL, page.body)
	}
	at := b.cookie("account_access_token", "/account/")
	if at == "" || b.cookie("refresh_token", "/") == "" {
		b.t.Fatal("signed in without the session cookies")
	}
	return at
}

// refused checks that r is the page of a refused sign-in, not a problem
// document, and that it signed no one in.
func (b *browser) refused(r resp, status int, text string) {
	b.t.Helper()
	if r.StatusCode != status || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), text) || r.Header.Get("Content-Security-Policy") == "" {
		b.t.Fatalf("want a %d page saying %q, got %d %s\n%.600s", status, text, r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	if r.cookie("refresh_token") != nil || r.cookie("account_access_token") != nil {
		b.t.Fatal("a refused sign-in set session cookies")
	}
}

// waitAudit waits for an audit entry of typ whose detail is detail.
func (s *issuer) waitAudit(adm, typ, detail string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, e := range s.audit(adm, "limit=200&type="+typ).Entries {
			if e.Detail == detail {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %s audit entry with detail %q after 30 s", typ, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A first sign-in through the provider creates the user (address verified
// as the provider says), signs the browser in as a password does, and
// lands on the account page, which lists the provider; a second sign-in
// is the same user.
func TestSignInThroughProvider(t *testing.T) {
	s := startFederatedIssuer(t)
	adm := s.admin()
	login := s.do("GET", "/account/login", "")
	if !strings.Contains(string(login.body), `<a class="button" href="/oauth/dev/start">Sign in with Dev provider</a>`) {
		t.Fatalf("the sign-in page has no link to the provider:\n%s", login.body)
	}
	if r := s.do("GET", "/oauth/dev/start", ""); r.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(r.Header.Get("Location"), sdktest.RequireEnv(t, "JOTGUARD_HYDRA_URL")) || r.cookie("jotguard_oidc_dev") == nil {
		t.Fatalf("start: %d %s", r.StatusCode, r.Header.Get("Location"))
	} else if c := r.cookie("jotguard_oidc_dev"); !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/oauth/dev/" {
		t.Fatalf("the flow cookie: %+v", c)
	} else if loc, _ := url.Parse(r.Header.Get("Location")); loc.Query().Get("code_challenge_method") != "S256" ||
		loc.Query().Get("nonce") == "" || loc.Query().Get("state") == "" || loc.Query().Get("redirect_uri") != s.base+"/oauth/dev/callback" {
		t.Fatalf("the authorization request: %s", loc)
	}
	who := person{subject: "sub-" + rand.Text(), email: newAddress(), verified: true}
	b := newBrowser(t, s)
	at := b.signIn(who)
	c, _ := s.verify(at)
	if c.Email != who.email || !c.EmailVerified {
		t.Fatalf("the token's user: %+v, want %s verified", c, who.email)
	}
	page := b.get("/account/")
	if !strings.Contains(string(page.body), "Linked accounts") || !strings.Contains(string(page.body), "<strong>Dev provider</strong>") {
		t.Fatalf("the account page does not list the provider:\n%s", page.body)
	}
	// The refresh cookie is the API's own.
	if r := s.refresh(b.cookie("refresh_token", "/")); r.StatusCode != http.StatusOK {
		t.Fatalf("the refresh cookie at /access_token: %d %s", r.StatusCode, r.body)
	}

	again := newBrowser(t, s)
	c2, _ := s.verify(again.signIn(who))
	if c2.Subject != c.Subject {
		t.Fatalf("a second sign-in is user %s, the first was %s", c2.Subject, c.Subject)
	}
	s.waitAudit(adm, "user.registered", "provider=dev")
	s.waitAudit(adm, "login.succeeded", "provider=dev")

	// An unverified address makes an unverified account.
	unverified := person{subject: "sub-" + rand.Text(), email: newAddress()}
	c3, _ := s.verify(newBrowser(t, s).signIn(unverified))
	if c3.EmailVerified {
		t.Fatal("an address the provider did not verify is verified here")
	}

	// The only way to sign in cannot be removed.
	r := b.post("/account/identities/remove", url.Values{"csrf_token": {b.cookie("account_csrf", "/account/")},
		"provider": {"dev"}, "subject": {who.subject}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(string(r.body), "only way to sign in") {
		t.Fatalf("removing the last way to sign in: %d\n%.600s", r.StatusCode, r.body)
	}
}

// The provider's callback refuses what does not belong to a sign-in this
// browser started: a forged state, no flow cookie (another browser), a
// replayed code; each is a page, not a problem document, and an audit
// entry.
func TestProviderCallbackRefusals(t *testing.T) {
	s := startFederatedIssuer(t)
	adm := s.admin()
	who := person{subject: "sub-" + rand.Text(), email: newAddress(), verified: true}

	// Stopped at the callback: the provider's answer in hand.
	b := newBrowser(t, s)
	b.stopAt = "/oauth/dev/callback"
	r := b.atProvider(who)
	loc, err := url.Parse(r.Header.Get("Location"))
	if r.StatusCode/100 != 3 || err != nil || loc.Path != "/oauth/dev/callback" || loc.Query().Get("code") == "" {
		t.Fatalf("the provider's redirect back: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	b.stopAt = ""
	flow := b.cookie("jotguard_oidc_dev", "/oauth/dev/")
	if flow == "" {
		t.Fatal("no flow cookie")
	}

	// A forged state.
	forged := *loc
	q := forged.Query()
	q.Set("state", "forged-"+q.Get("state"))
	forged.RawQuery = q.Encode()
	b.refused(b.get(forged.String()), http.StatusBadRequest, "Sign-in failed")
	s.waitAudit(adm, "login.failed", "provider=dev state_mismatch")

	// The right answer, in another browser: no flow cookie.
	other := newBrowser(t, s)
	other.refused(other.get(loc.String()), http.StatusBadRequest, "Sign-in failed")
	s.waitAudit(adm, "login.failed", "provider=dev no_flow")

	// The forged state used the flow up: the browser holds it no more.
	b.refused(b.get(loc.String()), http.StatusBadRequest, "Sign-in failed")

	// A replay of the code with the flow cookie (copied before the
	// callback cleared it): the provider refuses the code.
	ok := newBrowser(t, s)
	ok.stopAt = "/oauth/dev/callback"
	r = ok.atProvider(who)
	cb := r.Header.Get("Location")
	flow = ok.cookie("jotguard_oidc_dev", "/oauth/dev/")
	ok.stopAt = ""
	if first := ok.get(cb); first.StatusCode != http.StatusOK || ok.cookie("refresh_token", "/") == "" {
		t.Fatalf("the callback: %d\n%.600s", first.StatusCode, first.body)
	}
	replay := s.do("GET", strings.TrimPrefix(cb, s.base), "", "Cookie", "jotguard_oidc_dev="+flow)
	replayer := &browser{t: t, s: s}
	replayer.refused(replay, http.StatusBadRequest, "Sign-in failed")
	s.waitAudit(adm, "login.failed", "provider=dev code_rejected")

	// The person cancels at the provider.
	c := newBrowser(t, s)
	page := c.get("/oauth/dev/start")
	m := challengeRe.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("the provider's sign-in page:\n%s", page.body)
	}
	r = c.post(page.Request.URL.Scheme+"://"+page.Request.URL.Host+"/login", url.Values{"challenge": {string(m[1])}, "action": {"deny"}})
	c.refused(r, http.StatusBadRequest, "Dev provider did not sign you in.")
	s.waitAudit(adm, "login.failed", "provider=dev provider_error")

	// An unknown provider.
	c.refused(c.get("/oauth/nope/start"), http.StatusNotFound, "no such way to sign in")
}

// The ID token in the token endpoint's answer must have been issued to
// this client and carry this sign-in's nonce. A browser cannot reach that
// answer, so the issuer's client to the provider splices real tokens Hydra
// issued into it: another sign-in's (another nonce) and another client's
// (for this sign-in's nonce) are each refused with a page and an audit
// entry; the client's own for this nonce sign in, so the splice alone
// refuses nothing.
func TestProviderIDTokenRefusals(t *testing.T) {
	env, dev := federatedEnv(t)
	op, err := oidc.NewProvider(t.Context(), dev.issuer)
	if err != nil {
		t.Fatal(err)
	}
	sp := &tokenSplicer{t: t, tokenURL: op.Endpoint().TokenURL}
	s := startIssuer(t, env, func(c *config.Config) {
		c.OIDCClient = &http.Client{Transport: sp, Timeout: 10 * time.Second}
	})
	adm := s.admin()
	other := hydraClient{issuer: dev.issuer, redirect: "http://127.0.0.1:1/elsewhere/callback"}
	_, other.id, other.secret = testenv.HydraClient(t, other.redirect)

	// spliced starts a sign-in, has Hydra issue tokens to c for the nonce
	// nonce(the sign-in's nonce), and signs in at the provider with them
	// in place of the ones the issuer's code exchange gets.
	spliced := func(c hydraClient, nonce func(string) string) (*browser, resp) {
		t.Helper()
		who := person{subject: "sub-" + rand.Text(), email: newAddress(), verified: true}
		b := newBrowser(t, s)
		page := b.get("/oauth/dev/start")
		sp.arm(hydraTokens(t, s, c, nonce(flowNonce(t, page)), who))
		r := b.atHydra(page, who)
		if sp.armed() {
			t.Fatal("the issuer exchanged no code: nothing was spliced")
		}
		return b, r
	}
	same := func(n string) string { return n }

	b, r := spliced(dev, same)
	if r.StatusCode != http.StatusOK || r.Request.URL.Path != "/oauth/dev/callback" ||
		!strings.Contains(string(r.body), `url=/account/"`) || b.cookie("refresh_token", "/") == "" {
		t.Fatalf("the client's own tokens for this nonce: %d %s\n%.600s", r.StatusCode, r.Request.URL, r.body)
	}

	// Another sign-in's ID token, with its access token (at_hash binds
	// them): only the nonce is wrong.
	b, r = spliced(dev, func(string) string { return "another-" + rand.Text() })
	b.refused(r, http.StatusBadRequest, "The sign-in could not be completed")
	s.waitAudit(adm, "login.failed", "provider=dev nonce_mismatch")

	// Another client's, for this sign-in's nonce: only the audience is
	// wrong.
	b, r = spliced(other, same)
	b.refused(r, http.StatusBadRequest, "The sign-in could not be completed")
	s.waitAudit(adm, "login.failed", "provider=dev id_token_audience")
}

// tokenSplicer is a transport to the provider that, once armed, replaces
// the ID token and access token of the token endpoint's next answer.
type tokenSplicer struct {
	t        *testing.T
	tokenURL string
	mu       sync.Mutex
	swap     map[string]string // the fields to replace; nil: none
}

func (sp *tokenSplicer) arm(idToken, accessToken string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.swap = map[string]string{"id_token": idToken, "access_token": accessToken}
}

func (sp *tokenSplicer) armed() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.swap != nil
}

func (sp *tokenSplicer) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || r.URL.String() != sp.tokenURL {
		return res, err
	}
	sp.mu.Lock()
	swap := sp.swap
	sp.swap = nil
	sp.mu.Unlock()
	if swap == nil {
		return res, nil
	}
	var m map[string]any
	err = json.NewDecoder(res.Body).Decode(&m)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		sp.t.Errorf("the token endpoint to splice: %s %v", res.Status, err)
		return nil, errors.New("nothing to splice")
	}
	for k, v := range swap {
		m[k] = v
	}
	body, _ := json.Marshal(m)
	res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	res.Header.Del("Content-Length")
	return res, nil
}

// flowNonce is the nonce of the authorization request that led to page.
func flowNonce(t *testing.T, page resp) string {
	t.Helper()
	for req := page.Request; req != nil; req = req.Response.Request {
		if n := req.URL.Query().Get("nonce"); n != "" {
			return n
		}
		if req.Response == nil {
			break
		}
	}
	t.Fatalf("no authorization request with a nonce led to %s", page.Request.URL)
	return ""
}

// hydraTokens runs a sign-in of c at Hydra, as who, for nonce, and returns
// the ID token and access token Hydra issued for it.
func hydraTokens(t *testing.T, s *issuer, c hydraClient, nonce string, who person) (idToken, accessToken string) {
	t.Helper()
	op, err := oidc.NewProvider(t.Context(), c.issuer)
	if err != nil {
		t.Fatal(err)
	}
	oc := oauth2.Config{ClientID: c.id, ClientSecret: c.secret, Endpoint: op.Endpoint(), RedirectURL: c.redirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t, s)
	redirect, _ := url.Parse(c.redirect)
	b.stopAt = redirect.Path
	r := b.atHydra(b.get(oc.AuthCodeURL(rand.Text(), oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))), who)
	code := ""
	if loc, err := url.Parse(r.Header.Get("Location")); err == nil && strings.HasPrefix(loc.String(), c.redirect+"?") {
		code = loc.Query().Get("code")
	}
	if r.StatusCode/100 != 3 || code == "" {
		t.Fatalf("hydra's redirect back: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	tok, err := oc.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ = tok.Extra("id_token").(string)
	if idToken == "" || tok.AccessToken == "" {
		t.Fatalf("hydra issued no ID token or no access token: %+v", tok)
	}
	return idToken, tok.AccessToken
}

// An address of an existing account signs in to it only once the
// account's password is confirmed, and only if the provider verified the
// address: an unverified address matching an account signs in to nothing.
func TestProviderLinksToAnAccountOnlyWithItsPassword(t *testing.T) {
	s := startFederatedIssuer(t)
	adm := s.admin()
	email := s.register(pw)
	at, _ := s.login(email, pw)
	owner := s.userID(at)

	// Unverified by the provider: refused, whatever the account.
	b := newBrowser(t, s)
	r := b.atProvider(person{subject: "attacker-" + rand.Text(), email: email})
	b.refused(r, http.StatusConflict, "An account already uses this email address")
	s.waitAudit(adm, "login.failed", "provider=dev email_in_use_unverified")
	if p := b.get("/account/"); p.Request.URL.Path != "/account/login" {
		t.Fatalf("after the refused sign-in the account page is %s: signed in", p.Request.URL.Path)
	}

	// Verified: the link page asks for the account's password.
	who := person{subject: "owner-" + rand.Text(), email: strings.ToUpper(email), verified: true}
	r = b.atProvider(who)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `url=/account/link"`) {
		t.Fatalf("back from the provider: %d\n%.600s", r.StatusCode, r.body)
	}
	if b.cookie("refresh_token", "/") != "" {
		t.Fatal("signed in before the password was confirmed")
	}
	page := b.get("/account/link")
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "enter its password once") {
		t.Fatalf("link page: %d\n%.600s", page.StatusCode, page.body)
	}
	csrf := b.cookie("account_csrf", "/account/")
	r = b.post("/account/link", url.Values{"csrf_token": {csrf}, "password": {"not the password at all"}})
	b.refused(r, http.StatusForbidden, "The password is wrong.")
	r = b.post("/account/link", url.Values{"csrf_token": {csrf}, "password": {pw}})
	if r.StatusCode != http.StatusOK || r.Request.URL.Path != "/account/" || !strings.Contains(string(r.body), "Your account is linked") {
		t.Fatalf("link: %d %s\n%.600s", r.StatusCode, r.Request.URL, r.body)
	}
	if c, _ := s.verify(b.cookie("account_access_token", "/account/")); c.Subject != owner {
		t.Fatalf("linked and signed in as %s, want the account %s", c.Subject, owner)
	}
	s.waitAudit(adm, "identity.linked", "provider=dev")

	// From now on the provider signs in to the account directly.
	if c, _ := s.verify(newBrowser(t, s).signIn(who)); c.Subject != owner {
		t.Fatalf("a sign-in after the link is %s, want %s", c.Subject, owner)
	}

	// The account has a password: the provider may be removed, and then
	// signs in to the account no more without the password.
	r = b.post("/account/identities/remove", url.Values{"csrf_token": {b.cookie("account_csrf", "/account/")},
		"provider": {"dev"}, "subject": {who.subject}})
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "no longer signs you in") {
		t.Fatalf("remove: %d\n%.600s", r.StatusCode, r.body)
	}
	s.waitAudit(adm, "identity.unlinked", "provider=dev")
	r = newBrowser(t, s).atProvider(who)
	if !strings.Contains(string(r.body), `url=/account/link"`) {
		t.Fatalf("after the removal a sign-in does not ask for the password:\n%.600s", r.body)
	}
}

// Pre-account takeover: an attacker signs in through a provider that does
// not verify addresses, claiming the victim's address, before the victim
// has an account here. The victim later takes the account over with a
// password reset (the mailbox is theirs): the reset removes the identity
// whose provider had not verified the address, and ends the attacker's
// sessions, so the attacker's next sign-in through the provider is refused
// like any unverified address that is an account's.
func TestPasswordResetRemovesAProviderThatHadNotVerifiedTheAddress(t *testing.T) {
	s := startFederatedIssuer(t, "JOTGUARD_SMTP_URL", sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL"))
	adm := s.admin()
	box := devInbox(t)
	victim := newAddress()
	attacker := person{subject: "attacker-" + rand.Text(), email: victim} // email_verified=false

	ab := newBrowser(t, s)
	c, _ := s.verify(ab.signIn(attacker))
	if c.Email != victim || c.EmailVerified {
		t.Fatalf("the attacker's first sign-in: %+v, want an unverified account of %s", c, victim)
	}
	attackerRT := ab.cookie("refresh_token", "/")

	// The victim: "forgot password", the mailed link, a new password.
	s.expect(s.do("POST", "/password/forgot", jsonBody("email", victim)), http.StatusAccepted, "")
	token := s.follow(box.wait(victim, subjReset, 1), "/account/reset-password")
	const newPW = "the victim's own long passphrase"
	s.expect(s.do("POST", "/password/reset", jsonBody("token", token, "password", newPW)), http.StatusNoContent, "")
	vat, _ := s.login(victim, newPW)
	if got := s.userID(vat); got != c.Subject {
		t.Fatalf("the victim's login is user %s, want the account %s", got, c.Subject)
	}

	// The attacker's session is over, and the provider no longer opens
	// the account.
	s.expect(s.refresh(attackerRT), http.StatusUnauthorized, "invalid_refresh_token")
	b := newBrowser(t, s)
	b.refused(b.atProvider(attacker), http.StatusConflict, "An account already uses this email address")
	if p := b.get("/account/"); p.Request.URL.Path != "/account/login" {
		t.Fatalf("after the refused sign-in the account page is %s: signed in", p.Request.URL.Path)
	}
	s.waitAudit(adm, "identity.unlinked", "provider=dev unverified_address_reset")
	s.waitAudit(adm, "login.failed", "provider=dev email_in_use_unverified")
}
