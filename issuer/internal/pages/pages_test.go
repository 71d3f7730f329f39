package pages_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/issuer/internal/pages"
	"github.com/jotguard/jotguard/issuer/internal/password"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// These tests serve the pages alone, over a Service on memstore with real
// signing keys, password hashing and token checks. The issuer's app tests
// serve them inside the API against the real servers, and deploy/demo's
// browser test clicks through them in Chromium.

type mailbox struct {
	mu   sync.Mutex
	sent []auth.Mail
}

func (m *mailbox) Send(_ context.Context, ml auth.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, ml)
	return nil
}

// link returns the link of the last mail of template to to.
func (m *mailbox) link(t *testing.T, to, template string) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.sent) - 1; i >= 0; i-- {
		if m.sent[i].To == to && m.sent[i].Template == template {
			return m.sent[i].Data[auth.MailLink]
		}
	}
	t.Fatalf("no %s mail to %s", template, to)
	return ""
}

type events struct {
	mu  sync.Mutex
	evs []revocation.Event
}

func (e *events) Publish(_ context.Context, evs ...revocation.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, evs...)
	return nil
}

// refusing is a Limiter that refuses class, and counts what it is asked.
type refusing struct {
	mu     sync.Mutex
	class  ratelimit.Class
	asked  map[ratelimit.Class]int
	refuse bool
}

func (l *refusing) Allow(_ context.Context, k ratelimit.Key) (ratelimit.Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked[k.Class()]++
	if l.refuse && k.Class() == l.class {
		return ratelimit.Decision{RetryAfter: 42 * time.Second}, nil
	}
	return ratelimit.Decision{Allowed: true}, nil
}

type site struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *auth.Service
	mail    *mailbox
	limiter *refusing
}

func newSite(t *testing.T, o pages.Options) *site {
	t.Helper()
	km, err := keys.NewManager(t.Context(), memstore.NewKeys(), keys.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: "http://issuer.test", Audience: []string{"jotguard"},
		Keys: sdk.NewLocalKeys(km.JWKS)})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := password.New(password.Config{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, mail: &mailbox{}, limiter: &refusing{asked: map[ratelimit.Class]int{}}}
	s.svc, err = auth.NewService(auth.Config{Issuer: "http://issuer.test", Audience: []string{"jotguard"}, AccessTTL: 5 * time.Minute},
		auth.Deps{Users: memstore.NewUsers(), Sessions: memstore.NewSessions(10*time.Second, nil), Hasher: hasher,
			Signer: km, Verifier: v, Events: &events{}, Links: memstore.NewLinkTokens(), Mailer: s.mail})
	if err != nil {
		t.Fatal(err)
	}
	o.Service, o.Limiter, o.RefreshTTL = s.svc, s.limiter, time.Hour
	p, err := pages.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(p)
	t.Cleanup(s.srv.Close)
	return s
}

// browser is a client with its own cookies that sends what a browser
// sends with a form of the site.
type browser struct {
	s   *site
	c   *http.Client
	ua  string
	jar *cookiejar.Jar
}

func (s *site) browser(ua string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{s: s, ua: ua, jar: jar, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) page {
	b.s.t.Helper()
	req.Header.Set("User-Agent", b.ua)
	res, err := b.c.Do(req)
	if err != nil {
		b.s.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{res, string(body)}
}

func (b *browser) get(path string) page {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.s.srv.URL+path, nil)
	req.Header.Set("Sec-Fetch-Site", "none")
	return b.do(req)
}

// post sends a form from the site's own page, with the CSRF token the
// browser's cookie holds (unless form sets csrf_token itself).
func (b *browser) post(path string, form url.Values, hdr ...string) page {
	b.s.t.Helper()
	if !form.Has("csrf_token") {
		form.Set("csrf_token", b.cookie("account_csrf"))
	}
	req, _ := http.NewRequest(http.MethodPost, b.s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.s.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.s.srv.URL + "/account/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

const pw = "correct horse battery staple"

// signUp registers email, verifies it through its mailed link and signs
// in.
func (b *browser) signUp(email string) {
	b.s.t.Helper()
	b.get("/account/register")
	if r := b.post("/account/register", url.Values{"email": {email}, "new_password": {pw}}); r.StatusCode != 200 ||
		!strings.Contains(r.body, "Check your inbox") {
		b.s.t.Fatalf("register: %d\n%s", r.StatusCode, r.body)
	}
	b.signIn(email, pw)
}

func (b *browser) signIn(email, password string) {
	b.s.t.Helper()
	b.get("/account/login")
	r := b.post("/account/login", url.Values{"identifier": {email}, "password": {password}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/" {
		b.s.t.Fatalf("sign in: %d %s\n%s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
}

func wantHeaders(t *testing.T, r page) {
	t.Helper()
	csp := r.Header.Get("Content-Security-Policy")
	for name, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff"} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s %s: %s %q, want %q", r.Request.Method, r.Request.URL.Path, name, got, want)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		!strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s %s: Content-Security-Policy %q", r.Request.Method, r.Request.URL.Path, csp)
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(r.Request.URL.Path, "/account/static/") {
		return
	} else if ct != "text/html; charset=utf-8" {
		t.Errorf("%s %s: Content-Type %q, want an HTML page", r.Request.Method, r.Request.URL.Path, ct)
	}
	if strings.Contains(r.body, "<script") || regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(r.body) {
		t.Errorf("%s %s: inline script or style in the page", r.Request.Method, r.Request.URL.Path)
	}
}

// fieldError returns the error shown next to input id, or "".
func fieldError(body, id string) string {
	m := regexp.MustCompile(`<p id="` + id + `-error" class="field-error">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// Every page, its errors included, is HTML with the security headers, and
// with no inline script or style for the policy to forbid.
func TestSecurityHeaders(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	for _, r := range []page{
		b.get("/account/login"), b.get("/account/register"), b.get("/account/forgot-password"),
		b.get("/account/verify-email?token=x"), b.get("/account/reset-password?token=x"),
		b.get("/account/verify-email"), b.get("/account/nowhere"), b.get("/account/static/style.css"),
		b.post("/account/login", url.Values{"identifier": {"a@example.com"}, "password": {"wrong"}}),
		b.post("/account/login", url.Values{"csrf_token": {"forged"}}),
	} {
		wantHeaders(t, r)
	}
	if r := b.get("/account/nowhere"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %d", r.StatusCode)
	}
}

// A form is carried out only with the token of the browser's cookie, and
// only from the site's own pages: a forged one gets a page saying so, and
// signs nobody in.
func TestCSRF(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	b.signUp("ada@example.com")
	b.post("/account/logout", url.Values{})

	login := url.Values{"identifier": {"ada@example.com"}, "password": {pw}}
	for name, tc := range map[string]struct {
		token string
		hdr   []string
	}{
		"no token":            {token: "-"},
		"another token":       {token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		"cross-site":          {hdr: []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		"same-site subdomain": {hdr: []string{"Sec-Fetch-Site", "same-site", "Origin", "https://evil.issuer.test"}},
		"old browser, origin": {hdr: []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range login {
				form[k] = v
			}
			if tc.token == "-" {
				form.Set("csrf_token", "")
			} else if tc.token != "" {
				form.Set("csrf_token", tc.token)
			}
			r := b.post("/account/login", form, tc.hdr...)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("forged sign-in: %d %s, want 403 and a page", r.StatusCode, r.Header.Get("Content-Type"))
			}
			for _, c := range r.Cookies() {
				if c.Name == "refresh_token" || c.Name == "account_access_token" {
					t.Fatalf("a forged sign-in set %s", c.Name)
				}
			}
		})
	}
	b.signIn("ada@example.com", pw) // the real form still works
}

// The link of a verification mail opens a page with a button: opening it
// (as a mail scanner does) uses nothing up; the button verifies, once.
func TestVerifyLinkNeedsAPost(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	b.signUp("grace@example.com")
	link, err := url.Parse(s.mail.link(t, "grace@example.com", auth.MailVerifyEmail))
	if err != nil {
		t.Fatal(err)
	}
	token := link.Query().Get("token")
	for range 3 {
		if r := b.get(link.RequestURI()); r.StatusCode != 200 || !strings.Contains(r.body, `value="`+token+`"`) {
			t.Fatalf("GET of the link: %d\n%s", r.StatusCode, r.body)
		}
	}
	if r := b.get("/account/"); !strings.Contains(r.body, "Your address is not verified") {
		t.Fatalf("a GET of the link verified the address:\n%s", r.body)
	}
	if r := b.post("/account/verify-email", url.Values{"token": {token}}); r.StatusCode != 200 || !strings.Contains(r.body, "is verified") {
		t.Fatalf("the button: %d\n%s", r.StatusCode, r.body)
	}
	if r := b.get("/account/"); strings.Contains(r.body, "Your address is not verified") {
		t.Fatal("the account page still says the address is not verified")
	}
	if r := b.post("/account/verify-email", url.Values{"token": {token}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.body, "This link is not valid") {
		t.Fatalf("the button again: %d\n%s", r.StatusCode, r.body)
	}
}

// A form the Service refuses comes back with the message next to the
// field, the value kept (never a password), the focus on it: a page, not
// a problem document.
func TestErrorsNextToFields(t *testing.T) {
	s := newSite(t, pages.Options{PasswordMin: 12})
	b := s.browser("test")
	b.get("/account/register")
	r := b.post("/account/register", url.Values{"email": {"lin@example.com"}, "new_password": {"short"}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("weak password: %d", r.StatusCode)
	}
	if got := fieldError(r.body, "new_password"); got != "New password must be 12 to 128 characters." {
		t.Errorf("next to the password: %q\n%s", got, r.body)
	}
	if !strings.Contains(r.body, `id="new_password" name="new_password" type="password" autocomplete="new-password" required autofocus aria-invalid="true" aria-describedby="new_password-error new_password-hint"`) ||
		!strings.Contains(r.body, `value="lin@example.com"`) || strings.Contains(r.body, `value="short"`) {
		t.Errorf("the form shown again:\n%s", r.body)
	}
	b.signUp("lin@example.com")
	b.post("/account/logout", url.Values{})
	b.get("/account/register")
	r = b.post("/account/register", url.Values{"email": {"LIN@example.com"}, "new_password": {pw}})
	if r.StatusCode != http.StatusConflict || !strings.Contains(fieldError(r.body, "email"), "Another account uses this address") {
		t.Errorf("a taken address: %d %q", r.StatusCode, fieldError(r.body, "email"))
	}
	r = b.post("/account/login", url.Values{"identifier": {"lin@example.com"}, "password": {"not the password"}})
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, `role="alert">The email address, username or password is wrong.`) {
		t.Errorf("a wrong password: %d\n%s", r.StatusCode, r.body)
	}
}

// The pages spend the API's budgets: credentials for what checks a
// password or sends mail, refresh for a rotation. A refusal is a page
// that says when to try again, with Retry-After.
func TestRateLimits(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	b.signUp("kay@example.com")
	if s.limiter.asked[ratelimit.Credentials] != 2 { // register, sign in
		t.Errorf("credentials asked %d times, want 2", s.limiter.asked[ratelimit.Credentials])
	}
	s.limiter.class, s.limiter.refuse = ratelimit.Credentials, true
	r := b.post("/account/password", url.Values{"current_password": {pw}, "new_password": {pw + "!"}})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "42" ||
		!strings.Contains(r.body, "Too many attempts from your network. Try again in 42 seconds.") ||
		!strings.Contains(r.body, "Where you are signed in") {
		t.Errorf("refused password change: %d Retry-After %q\n%s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
	s.limiter.class = ratelimit.Refresh
	b.jar.SetCookies(b.srvURL(), []*http.Cookie{{Name: "account_access_token", Value: "", Path: "/account/", MaxAge: -1}})
	r = b.get("/account/")
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(r.body, "Try again in 42 seconds") || s.limiter.asked[ratelimit.Refresh] != 1 {
		t.Errorf("refused refresh: %d, refresh asked %d times\n%s", r.StatusCode, s.limiter.asked[ratelimit.Refresh], r.body)
	}
}

func (b *browser) srvURL() *url.URL {
	u, _ := url.Parse(b.s.srv.URL + "/account/")
	return u
}

// The browser carries the API's session: its refresh cookie (Path=/) and
// the access token in a cookie of the pages; both HttpOnly and
// SameSite=Strict. Pages use the access token while it lasts; past it they
// rotate the refresh token once, and page loads that race to do so with the
// same token all get the same successor: no false reuse.
func TestSessionCookies(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	b.get("/account/register")
	b.post("/account/register", url.Values{"email": {"max@example.com"}, "new_password": {pw}})
	b.get("/account/login")
	r := b.post("/account/login", url.Values{"identifier": {"max@example.com"}, "password": {pw}})
	got := map[string]*http.Cookie{}
	for _, c := range r.Cookies() {
		got[c.Name] = c
	}
	for name, path := range map[string]string{"refresh_token": "/", "account_access_token": "/account/", "account_csrf": "/account/"} {
		c := got[name]
		if c == nil || c.Path != path || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" {
			t.Fatalf("cookie %s: %+v, want HttpOnly, SameSite=Strict, Path=%s", name, c, path)
		}
	}
	if got["account_access_token"].MaxAge <= 0 || got["account_access_token"].MaxAge > 300 {
		t.Errorf("access cookie Max-Age %d, want at most the token's 300 s", got["account_access_token"].MaxAge)
	}
	refresh := got["refresh_token"].Value
	for range 3 {
		if r := b.get("/account/"); r.StatusCode != 200 || len(r.Cookies()) != 0 {
			t.Fatalf("account page: %d, cookies %v: want 200 and no rotation while the access token lasts", r.StatusCode, r.Cookies())
		}
	}

	// The access token expired: concurrent loads rotate the same token.
	var wg sync.WaitGroup
	successors := make([]string, 4)
	for i := range successors {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/account/", nil)
			req.AddCookie(&http.Cookie{Name: "refresh_token", Value: refresh})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			for _, c := range res.Cookies() {
				if c.Name == "refresh_token" && res.StatusCode == 200 {
					successors[i] = c.Value
				}
			}
		})
	}
	wg.Wait()
	for _, got := range successors {
		if got == "" || got != successors[0] || got == refresh {
			t.Fatalf("concurrent loads got refresh tokens %q, want one successor each", successors)
		}
	}
	if _, err := s.svc.Refresh(t.Context(), successors[0]); err != nil {
		t.Fatalf("the successor does not refresh: %v (the session was revoked as a reuse?)", err)
	}
}

// Signing a session out from the account page ends it at once: the other
// browser's next page is the sign-in page, and its refresh token is dead.
func TestSignOutOtherSession(t *testing.T) {
	s := newSite(t, pages.Options{})
	here, there := s.browser("Mozilla/5.0 (X11; Linux x86_64) Chrome/150.0 Safari/537.36"), s.browser("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1")
	here.signUp("zoe@example.com")
	there.signIn("zoe@example.com", pw)
	r := here.get("/account/")
	if n := strings.Count(r.body, `<div class="device">`); n != 2 || !strings.Contains(r.body, "Chrome on Linux</strong> <span class=\"badge\">This device") ||
		!strings.Contains(r.body, "Safari on iOS") {
		t.Fatalf("%d sessions listed, want this Chrome on Linux and a Safari on iOS:\n%s", n, r.body)
	}
	sid := regexp.MustCompile(`name="sid" value="([^"]+)"`).FindStringSubmatch(r.body)
	if sid == nil {
		t.Fatal("no sign-out button for the other session")
	}
	if r := here.post("/account/sessions/revoke", url.Values{"sid": {sid[1]}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
	if r := here.get("/account/?done=revoked"); strings.Count(r.body, `<div class="device">`) != 1 || !strings.Contains(r.body, "That device is signed out.") {
		t.Fatalf("after the sign-out:\n%s", r.body)
	}
	if r := there.get("/account/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/login" {
		t.Fatalf("the signed-out browser's page: %d %s, want the sign-in page", r.StatusCode, r.Header.Get("Location"))
	}
	if there.cookie("refresh_token") != "" || there.cookie("account_access_token") != "" {
		t.Fatal("the signed-out browser keeps its session cookies")
	}
}

// The sign-in page has a place for other providers: a link each.
func TestProviders(t *testing.T) {
	s := newSite(t, pages.Options{Providers: []pages.Provider{{Name: "Example ID", StartURL: "/oauth/example/start"}}})
	r := s.browser("test").get("/account/login")
	if !strings.Contains(r.body, `<a class="button" href="/oauth/example/start">Sign in with Example ID</a>`) {
		t.Fatalf("no provider link:\n%s", r.body)
	}
}

// A brand's name and stylesheet are on every page.
func TestBranding(t *testing.T) {
	s := newSite(t, pages.Options{Title: "Acme ID", Stylesheet: []byte(":root{--accent:#e11d48}")})
	b := s.browser("test")
	r := b.get("/account/login")
	m := regexp.MustCompile(`<link rel="stylesheet" href="(/account/static/brand\.css\?v=[0-9a-f]+)">`).FindStringSubmatch(r.body)
	if !strings.Contains(r.body, "<title>Sign in · Acme ID</title>") || m == nil {
		t.Fatalf("branded page:\n%s", r.body)
	}
	if css := b.get(html.UnescapeString(m[1])); css.body != ":root{--accent:#e11d48}" || css.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("brand stylesheet: %q %q", css.body, css.Header.Get("Content-Type"))
	}
}

// A reset link opens a form (the GET uses nothing up); a password the
// rules refuse keeps the link usable; the new one signs every browser out.
func TestResetPassword(t *testing.T) {
	s := newSite(t, pages.Options{})
	b, other := s.browser("test"), s.browser("other")
	b.signUp("ines@example.com")
	other.signIn("ines@example.com", pw)
	b.get("/account/forgot-password")
	for _, email := range []string{"ines@example.com", "nobody@example.com"} {
		r := b.post("/account/forgot-password", url.Values{"email": {email}})
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "If "+email+" is the address of an account, we sent it a link") {
			t.Fatalf("forgot %s: %d\n%s", email, r.StatusCode, r.body)
		}
	}
	link, _ := url.Parse(s.mail.link(t, "ines@example.com", auth.MailResetPassword))
	if link.Path != "/account/reset-password" {
		t.Fatalf("the reset mail links to %s, not to the reset page", link)
	}
	token := link.Query().Get("token")
	b.get(link.RequestURI())
	if r := b.post("/account/reset-password", url.Values{"token": {token}, "new_password": {"1qaz2wsx3edc"}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(fieldError(r.body, "new_password"), "common password") || !strings.Contains(r.body, `value="`+token+`"`) {
		t.Fatalf("a common password: %d %q", r.StatusCode, fieldError(r.body, "new_password"))
	}
	if r := b.post("/account/reset-password", url.Values{"token": {token}, "new_password": {"a brand new passphrase"}}); r.StatusCode != 200 ||
		!strings.Contains(r.body, "every device signed in to your account was signed out") {
		t.Fatalf("reset: %d\n%s", r.StatusCode, r.body)
	}
	if r := other.get("/account/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the other browser after the reset: %d, want the sign-in page", r.StatusCode)
	}
	b.signIn("ines@example.com", "a brand new passphrase")
	if r := b.post("/account/reset-password", url.Values{"token": {token}, "new_password": {"another new passphrase"}}); !strings.Contains(r.body, "This link is not valid") {
		t.Fatalf("the link used twice:\n%s", r.body)
	}
}

// The account page's forms: profile, an address change (a link to the new
// address), deletion (the password first).
func TestAccountForms(t *testing.T) {
	s := newSite(t, pages.Options{})
	b := s.browser("test")
	b.signUp("olga@example.com")
	if r := b.post("/account/profile", url.Values{"username": {"olga"}, "first_name": {"Olga"}, "last_name": {"K"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("profile: %d\n%s", r.StatusCode, r.body)
	}
	if r := b.get("/account/?done=profile"); !strings.Contains(r.body, `value="olga"`) || !strings.Contains(r.body, "Your profile is saved.") {
		t.Fatalf("the profile after saving:\n%s", r.body)
	}
	if r := b.post("/account/profile", url.Values{"username": {"o"}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(fieldError(r.body, "username"), "Username must be 3 to 64") || !strings.Contains(r.body, `id="username" name="username" type="text" value="o"`) {
		t.Fatalf("a bad username: %d %q", r.StatusCode, fieldError(r.body, "username"))
	}
	if r := b.post("/account/email", url.Values{"new_email": {"olga@example.org"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("email change: %d\n%s", r.StatusCode, r.body)
	}
	s.mail.link(t, "olga@example.org", auth.MailVerifyEmail)
	if r := b.post("/account/delete", url.Values{"delete_password": {"wrong password here"}}); r.StatusCode != http.StatusForbidden ||
		fieldError(r.body, "delete_password") != "The password is wrong." {
		t.Fatalf("delete with a wrong password: %d %q", r.StatusCode, fieldError(r.body, "delete_password"))
	}
	if r := b.post("/account/delete", url.Values{"delete_password": {pw}}); r.StatusCode != 200 || !strings.Contains(r.body, "Your account is deleted") {
		t.Fatalf("delete: %d\n%s", r.StatusCode, r.body)
	}
	if r := b.get("/account/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the account page after deletion: %d", r.StatusCode)
	}
	b.get("/account/register")
	if r := b.post("/account/register", url.Values{"email": {"olga@example.com"}, "new_password": {pw}}); r.StatusCode != 200 {
		t.Fatalf("the address of a deleted account registers again: %d", r.StatusCode)
	}
}
