// Package pages serves the issuer's pages for people under /account/:
// sign in, register, the email verification and password reset links'
// landing pages, and the account page (profile, email and password
// change, the sessions with a sign-out button each, deletion).
//
// The pages are server-rendered (html/template, embedded templates and
// one stylesheet, no script) and call the same auth.Service methods under
// the same rate limits as the JSON API. A signed-in browser carries the
// API's own session: the HttpOnly refresh token cookie, exchanged for a
// short-lived access token kept in an HttpOnly cookie scoped to /account/
// (see session.go). Every form carries a CSRF token, and every
// state-changing request must come from the pages' own origin.
package pages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/federation"
	"github.com/jotguard/jotguard/issuer/internal/httpapi"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

//go:embed templates/*.html static/style.css
var assets embed.FS

// Limiter is what the pages need of the rate limits (ratelimit.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key ratelimit.Key) (ratelimit.Decision, error)
}

// Provider is another way to sign in, shown on the sign-in page as a
// link: "Sign in with Name" to StartURL (a GET that redirects to it).
type Provider struct {
	Name     string
	StartURL string
}

// Options configures the pages.
type Options struct {
	Service *auth.Service
	// Limiter spends the same per-network budgets as the API (nil: none).
	Limiter      Limiter
	RefreshTTL   time.Duration // the refresh cookie's lifetime, as the API sets it
	CookieSecure bool
	BodyLimit    int64 // largest form body; default 64 KiB
	PasswordMin  int   // shown next to new-password fields; default 12
	// Title is the product name on every page; default "jotguard".
	Title string
	// Stylesheet, when set, is served after the built-in one: it may
	// override its custom properties (colours) or add a logo.
	Stylesheet []byte
	// Providers are shown on the sign-in page; default: those of
	// Federation.
	Providers []Provider
	// Federation, when set, serves the sign-in through external OpenID
	// providers: /oauth/NAME/start and /oauth/NAME/callback (outside
	// Prefix), the page that links a provider to an existing account, and
	// the account page's list of linked providers.
	Federation Federation
	// Outcomes counts sign-ins and registrations as the API's are
	// counted (httpapi.Outcomes); nil: not counted.
	Outcomes Outcomes
	Logger   *slog.Logger
	Now      func() time.Time
}

// Outcomes counts what the pages' sign-ins and registrations ended with.
type Outcomes interface {
	Login(err error)
	Registration(err error)
}

// Pages is the http.Handler of the pages.
type Pages struct {
	o       Options
	log     *slog.Logger
	mux     *http.ServeMux
	tmpl    map[string]*template.Template
	style   asset
	brand   *asset
	origins *http.CrossOriginProtection
}

// asset is a stylesheet and the versioned path it is served at.
type asset struct {
	path string
	body []byte
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	return asset{path: Prefix + "static/" + name + "?v=" + hex.EncodeToString(sum[:6]), body: body}
}

// Prefix is where the pages are: where the API mounts them.
const Prefix = httpapi.PagesPrefix

// New parses the templates and returns the pages.
func New(o Options) (*Pages, error) {
	if o.Service == nil {
		return nil, errors.New("pages: Options.Service is required")
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = 64 << 10
	}
	if o.PasswordMin <= 0 {
		o.PasswordMin = 12
	}
	if o.Title == "" {
		o.Title = "jotguard"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Outcomes == nil {
		o.Outcomes = uncounted{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Federation != nil && o.Providers == nil {
		for _, pr := range o.Federation.Providers() {
			o.Providers = append(o.Providers, Provider{Name: pr.DisplayName, StartURL: federation.StartPath(pr.Name)})
		}
	}
	p := &Pages{o: o, log: o.Logger, tmpl: map[string]*template.Template{}, origins: http.NewCrossOriginProtection()}
	css, err := assets.ReadFile("static/style.css")
	if err != nil {
		return nil, err
	}
	p.style = newAsset("style.css", css)
	if o.Stylesheet != nil {
		b := newAsset("brand.css", o.Stylesheet)
		p.brand = &b
	}
	for _, page := range []string{"login", "register", "message", "verify", "forgot", "reset", "account", "link"} {
		t, err := template.New(page).Funcs(template.FuncMap{}).ParseFS(assets, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("pages: template %s: %w", page, err)
		}
		p.tmpl[page] = t
	}
	p.origins.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.message(w, r, http.StatusForbidden, "Request refused", []string{
			"This form was sent from another site's page, so it was not carried out.",
		}, link{Prefix, "Go to your account"})
	}))
	p.routes()
	return p, nil
}

// ServeHTTP sets the security headers of every page, refuses
// state-changing requests from other origins and without the form's CSRF
// token, and routes.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	p.origins.Handler(http.HandlerFunc(p.serve)).ServeHTTP(w, r)
}

func (p *Pages) serve(w http.ResponseWriter, r *http.Request) {
	if _, pattern := p.mux.Handler(r); pattern == "" {
		p.message(w, r, http.StatusNotFound, "Page not found", []string{"There is no page at this address."},
			link{Prefix, "Go to your account"})
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, p.o.BodyLimit)
		if err := r.ParseForm(); err != nil {
			status := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status = http.StatusRequestEntityTooLarge
			}
			p.message(w, r, status, "Form not understood", []string{"The form could not be read. Go back and send it again."},
				link{r.URL.Path, "Back"})
			return
		}
		if !p.checkCSRF(r) {
			p.csrfToken(w, r) // a fresh one for the next try
			p.message(w, r, http.StatusForbidden, "Form expired", []string{
				"This form has expired or was not sent from this site. Open the page again and send it once more.",
			}, link{r.URL.Path, "Open the page again"})
			return
		}
	}
	p.mux.ServeHTTP(w, r)
}

// link is a call to action under a page's text.
type link struct{ Href, Text string }

// view is what a template gets.
type view struct {
	Brand      string
	Style      string
	BrandStyle string
	Heading    string
	CSRF       string
	Error      string
	Notice     string
	User       *auth.User
	Sessions   []sessionView
	Token      string // the link token of the verification and reset forms
	Providers  []Provider
	Lines      []string // the message page's text
	Next       *link    // the message page's link
	// Refresh is where the page sends the browser on at once (a meta
	// refresh, not a script).
	Refresh string
	Link    *linkView // the link page's pending link
	// Identities are the user's linked provider accounts; Password is
	// whether the user has a password (the account page).
	Identities []identityView
	Password   bool
	Federation bool // sign-in through providers is on

	values      map[string]string // by field name
	errors      map[string]string // by field name
	passwordMin int
	focused     bool // an input with an error has the focus
}

// newView starts the view of a page, with the CSRF token of its forms.
func (p *Pages) newView(w http.ResponseWriter, r *http.Request, heading string) *view {
	v := &view{Brand: p.o.Title, Style: p.style.path, Heading: heading, CSRF: p.csrfToken(w, r),
		values: map[string]string{}, errors: map[string]string{}, passwordMin: p.o.PasswordMin}
	if p.brand != nil {
		v.BrandStyle = p.brand.path
	}
	return v
}

// render writes the page with status. A page is never cached: it may show
// personal data, and its address may hold a link's token.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var b bytes.Buffer
	if err := p.tmpl[page].ExecuteTemplate(&b, "layout", v); err != nil {
		p.log.ErrorContext(r.Context(), "page not rendered", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// message renders a page of text and one link.
func (p *Pages) message(w http.ResponseWriter, r *http.Request, status int, heading string, lines []string, next link) {
	v := p.newView(w, r, heading)
	v.Lines = lines
	if next.Href != "" {
		v.Next = &next
	}
	p.render(w, r, status, "message", v)
}

// serveAsset serves a stylesheet; its path changes with its content, so
// it may be cached long.
func serveAsset(a asset) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(a.body)
	}
}

// redirect answers 303 See Other: the browser GETs where.
func redirect(w http.ResponseWriter, r *http.Request, where string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, where, http.StatusSeeOther)
}

// formValue is a form field, never from the URL's query.
func formValue(r *http.Request, name string) string { return r.PostForm.Get(name) }

// clip cuts s to n bytes at a character boundary, for what is shown back.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

type uncounted struct{}

func (uncounted) Login(error)        {}
func (uncounted) Registration(error) {}
