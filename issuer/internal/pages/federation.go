package pages

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/federation"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

// Federation is what the pages need of the sign-in through external
// OpenID providers (federation.Federation).
type Federation interface {
	Providers() []federation.Provider
	// Start sets the flow cookie and returns the provider's
	// authorization URL.
	Start(ctx context.Context, w http.ResponseWriter, name string) (string, error)
	// Finish checks the provider's callback and returns who it vouches
	// for; its errors are *federation.Failure.
	Finish(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) (auth.ExternalIdentity, error)
	SetPendingLink(w http.ResponseWriter, l auth.PendingLink) error
	PendingLink(r *http.Request) (auth.PendingLink, error)
	ClearPendingLink(w http.ResponseWriter)
}

// The provider's pages are outside Prefix, where the redirect URIs
// registered at the providers point: /oauth/NAME/start and
// /oauth/NAME/callback (federation.StartPath, federation.CallbackPath).
func (p *Pages) federationRoutes(m *http.ServeMux) {
	if p.o.Federation == nil {
		return
	}
	m.HandleFunc("GET /oauth/{provider}/start", p.oauthStart)
	m.HandleFunc("GET /oauth/{provider}/callback", p.oauthCallback)
	m.HandleFunc("GET "+Prefix+"link", p.linkPage)
	m.HandleFunc("POST "+Prefix+"link", p.link)
	m.HandleFunc("POST "+Prefix+"identities/remove", p.unlink)
}

// providerName is the display name of a configured provider, or its name.
func (p *Pages) providerName(name string) string {
	if p.o.Federation != nil {
		for _, pr := range p.o.Federation.Providers() {
			if pr.Name == name {
				return pr.DisplayName
			}
		}
	}
	return name
}

func (p *Pages) oauthStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	to, err := p.o.Federation.Start(r.Context(), w, name)
	if err != nil {
		p.federationFailed(w, r, name, err)
		return
	}
	redirect(w, r, to)
}

// oauthCallback completes a sign-in through a provider: on success the
// browser is signed in exactly as by a password, and lands on the account
// page.
func (p *Pages) oauthCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	if err := p.limit(r, ratelimit.Credentials); err != nil {
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	}
	id, err := p.o.Federation.Finish(r.Context(), w, r, name)
	if err != nil {
		p.federationFailed(w, r, name, err)
		return
	}
	ip := clientIP(r)
	tok, err := p.o.Service.SignInExternal(r.Context(), auth.ExternalSignIn{Identity: id, IP: ip, UserAgent: r.UserAgent()})
	if lr, ok := errors.AsType[*auth.LinkRequiredError](err); ok {
		if err := p.o.Federation.SetPendingLink(w, lr.Pending); err != nil {
			p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
			return
		}
		p.landing(w, r, Prefix+"link")
		return
	}
	p.o.Outcomes.Login(err)
	if err != nil {
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	}
	p.setSession(w, tok)
	p.newCSRF(w, r)
	p.landing(w, r, Prefix)
}

// landing sends the browser on to where, from the provider's redirect
// back: a cross-site navigation, on which the pages' SameSite=Strict
// cookies, set here, would not be sent if this answered with a redirect.
// A page that moves on at once is a navigation of this site.
func (p *Pages) landing(w http.ResponseWriter, r *http.Request, where string) {
	v := p.newView(w, r, "Signing you in")
	v.Refresh = where
	v.Lines = []string{"One moment…"}
	v.Next = &link{where, "Continue"}
	p.render(w, r, http.StatusOK, "message", v)
}

// federationFailed shows why a sign-in through a provider failed, and
// records it.
func (p *Pages) federationFailed(w http.ResponseWriter, r *http.Request, name string, err error) {
	f, ok := errors.AsType[*federation.Failure](err)
	if !ok {
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	}
	p.log.InfoContext(r.Context(), "sign-in through a provider failed", "provider", name, "reason", f.Reason, "err", err)
	status, lines := http.StatusBadRequest, []string{"The sign-in could not be completed: it was not started here, took too long, or was used already. Start it again."}
	switch {
	case errors.Is(err, federation.ErrUnknownProvider):
		p.message(w, r, http.StatusNotFound, "Page not found", []string{"There is no such way to sign in."},
			link{Prefix + "login", "Back to sign in"})
		return
	case errors.Is(err, federation.ErrUnavailable):
		status, lines = http.StatusBadGateway, []string{p.providerName(name) + " cannot be reached right now. Try again in a moment, or sign in another way."}
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, federation.ErrDenied):
		lines = []string{p.providerName(name) + " did not sign you in."}
	}
	p.o.Service.ExternalSignInFailed(r.Context(), name, "", f.Reason)
	p.message(w, r, status, "Sign-in failed", lines, link{Prefix + "login", "Back to sign in"})
}

// linkPage asks for the password of the account whose address the
// provider vouched for.
func (p *Pages) linkPage(w http.ResponseWriter, r *http.Request) {
	l, err := p.o.Federation.PendingLink(r)
	if err != nil {
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	}
	p.render(w, r, http.StatusOK, "link", p.linkView(w, r, l))
}

func (p *Pages) linkView(w http.ResponseWriter, r *http.Request, l auth.PendingLink) *view {
	v := p.newView(w, r, "Link your "+p.providerName(l.Identity.Provider)+" account")
	v.Link = &linkView{Provider: p.providerName(l.Identity.Provider), Email: l.Email}
	return v
}

// linkView is the pending link the link page shows.
type linkView struct{ Provider, Email string }

func (p *Pages) link(w http.ResponseWriter, r *http.Request) {
	l, err := p.o.Federation.PendingLink(r)
	if err != nil {
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	}
	err = p.limit(r, ratelimit.Credentials)
	var tok auth.Tokens
	if err == nil {
		ip := clientIP(r)
		tok, err = p.o.Service.LinkExternal(r.Context(), auth.LinkInput{Pending: l, Password: formValue(r, "password"),
			Network: ratelimit.NetworkOf(ip), IP: ip, UserAgent: r.UserAgent()})
	}
	p.o.Outcomes.Login(err)
	switch {
	case errors.Is(err, auth.ErrLinkExpired) || errors.Is(err, auth.ErrIdentityTaken):
		p.o.Federation.ClearPendingLink(w)
		p.fail(w, r, err, link{Prefix + "login", "Back to sign in"})
		return
	case err != nil:
		p.show(w, r, "link", p.linkView(w, r, l), p.explain(r, err), nil)
		return
	}
	p.o.Federation.ClearPendingLink(w)
	p.setSession(w, tok)
	p.newCSRF(w, r)
	redirect(w, r, Prefix+"?done=linked")
}

func (p *Pages) unlink(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	err := p.o.Service.UnlinkIdentity(r.Context(), s.access, formValue(r, "provider"), formValue(r, "subject"))
	p.accountResult(w, r, s, err, "unlinked", "", nil)
}

// identityView is a linked provider account as the account page lists it.
type identityView struct {
	Provider, DisplayName, Subject, Email string
	LinkedISO, LinkedText                 string
}

// identityViews lists u's linked provider accounts.
func (p *Pages) identityViews(u auth.User) []identityView {
	out := make([]identityView, 0, len(u.Identities))
	for _, id := range u.Identities {
		out = append(out, identityView{Provider: id.Provider, DisplayName: p.providerName(id.Provider), Subject: id.Subject,
			Email: id.Email, LinkedISO: id.LinkedAt.UTC().Format(time.RFC3339), LinkedText: id.LinkedAt.UTC().Format("2 Jan 2006")})
	}
	return out
}
