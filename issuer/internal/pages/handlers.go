package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/httpapi"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

func (p *Pages) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+Prefix+"static/style.css", serveAsset(p.style))
	if p.brand != nil {
		m.HandleFunc("GET "+Prefix+"static/brand.css", serveAsset(*p.brand))
	}
	m.HandleFunc("GET "+Prefix+"{$}", p.account)
	m.HandleFunc("GET "+Prefix+"login", p.loginPage)
	m.HandleFunc("POST "+Prefix+"login", p.login)
	m.HandleFunc("POST "+Prefix+"logout", p.logout)
	m.HandleFunc("GET "+Prefix+"register", p.registerPage)
	m.HandleFunc("POST "+Prefix+"register", p.register)
	m.HandleFunc("GET "+Prefix+"verify-email", p.verifyPage)
	m.HandleFunc("POST "+Prefix+"verify-email", p.verify)
	m.HandleFunc("POST "+Prefix+"verify-email/resend", p.resend)
	m.HandleFunc("GET "+Prefix+"forgot-password", p.forgotPage)
	m.HandleFunc("POST "+Prefix+"forgot-password", p.forgot)
	m.HandleFunc("GET "+Prefix+"reset-password", p.resetPage)
	m.HandleFunc("POST "+Prefix+"reset-password", p.reset)
	m.HandleFunc("POST "+Prefix+"profile", p.profile)
	m.HandleFunc("POST "+Prefix+"email", p.changeEmail)
	m.HandleFunc("POST "+Prefix+"password", p.changePassword)
	m.HandleFunc("POST "+Prefix+"sessions/revoke", p.revokeSession)
	m.HandleFunc("POST "+Prefix+"delete", p.deleteAccount)
	p.federationRoutes(m)
	p.mux = m
}

// notices are what a page says after a redirect: ?done=<code> picks one
// of these fixed sentences, so nothing from the address is shown.
var notices = map[string]string{
	"signed-out":  "You are signed out.",
	"everywhere":  "You are signed out on every device.",
	"expired":     "Your session has ended. Sign in again.",
	"profile":     "Your profile is saved.",
	"email":       "We sent a link to the new address. The change takes effect once you open it.",
	"password":    "Your password is changed. Every other device was signed out.",
	"revoked":     "That device is signed out.",
	"resent":      "We sent the link again.",
	"not-revoked": "That session had ended already.",
	"linked":      "Your account is linked: you can now sign in with it too.",
	"unlinked":    "That account no longer signs you in.",
}

func hasCookie(r *http.Request, name string) bool {
	c, err := r.Cookie(name)
	return err == nil && c.Value != ""
}

func (p *Pages) loginPage(w http.ResponseWriter, r *http.Request) {
	if hasCookie(r, accessCookie) || hasCookie(r, httpapi.CookieName) {
		if _, err := p.session(w, r); err == nil {
			redirect(w, r, Prefix)
			return
		}
	}
	v := p.newView(w, r, "Sign in")
	v.Notice = notices[r.URL.Query().Get("done")]
	v.Providers = p.o.Providers
	p.render(w, r, http.StatusOK, "login", v)
}

func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(formValue(r, "identifier"))
	tok, err := p.signIn(r, id, formValue(r, "password"))
	if err != nil {
		v := p.newView(w, r, "Sign in")
		v.values["identifier"] = clip(id, 320)
		v.Providers = p.o.Providers
		p.show(w, r, "login", v, p.explain(r, err), nil)
		return
	}
	p.setSession(w, tok)
	p.newCSRF(w, r)
	redirect(w, r, Prefix)
}

// signIn checks a password as POST /login does, under the same limits.
func (p *Pages) signIn(r *http.Request, identifier, password string) (auth.Tokens, error) {
	if err := p.limit(r, ratelimit.Credentials); err != nil {
		p.o.Outcomes.Login(err)
		return auth.Tokens{}, err
	}
	ip := clientIP(r)
	tok, err := p.o.Service.Login(r.Context(), auth.LoginInput{Identifier: identifier, Password: password,
		Network: ratelimit.NetworkOf(ip), IP: ip, UserAgent: r.UserAgent()})
	p.o.Outcomes.Login(err)
	return tok, err
}

// logout ends this session (scope local) or every session of the user
// (scope global), and clears the cookies whatever the outcome but a
// refusal worth retrying.
func (p *Pages) logout(w http.ResponseWriter, r *http.Request) {
	scope, done := auth.ScopeLocal, "signed-out"
	if formValue(r, "scope") == "global" {
		scope, done = auth.ScopeGlobal, "everywhere"
	}
	in := auth.LogoutInput{Scope: scope}
	if c, err := r.Cookie(httpapi.CookieName); err == nil {
		in.RefreshToken = c.Value
	}
	if c, err := r.Cookie(accessCookie); err == nil {
		in.AccessToken = c.Value
	}
	err := p.o.Service.Logout(r.Context(), in)
	if errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrRateLimited) || errors.Is(err, auth.ErrBusy) {
		p.fail(w, r, err, link{Prefix, "Back to your account"})
		return
	}
	p.clearSession(w)
	p.newCSRF(w, r)
	if err != nil && scope == auth.ScopeLocal { // nothing was signed in: the same outcome
		done = "signed-out"
	}
	redirect(w, r, Prefix+"login?done="+done)
}

func (p *Pages) registerPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "register", p.newView(w, r, "Create an account"))
}

func (p *Pages) register(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(formValue(r, "email"))
	err := p.limit(r, ratelimit.Credentials)
	var u auth.User
	if err == nil {
		u, err = p.o.Service.Register(r.Context(), auth.RegisterInput{Email: email, Password: formValue(r, "new_password")})
	}
	p.o.Outcomes.Registration(err)
	if err != nil {
		v := p.newView(w, r, "Create an account")
		v.values["email"] = clip(email, 320)
		p.show(w, r, "register", v, p.explain(r, err), map[string]string{"password": "new_password"})
		return
	}
	p.message(w, r, http.StatusOK, "Check your inbox", []string{
		"We sent a link to " + u.Email + ". Open it to verify your address.",
		"Then sign in with your new account.",
	}, link{Prefix + "login", "Sign in"})
}

// verifyPage is the landing page of an email verification link: a button
// that sends the token. A GET never uses it up (mail scanners open links).
func (p *Pages) verifyPage(w http.ResponseWriter, r *http.Request) {
	v := p.newView(w, r, "Verify your email address")
	if v.Token = r.URL.Query().Get("token"); v.Token == "" {
		p.fail(w, r, auth.ErrInvalidLinkToken, link{Prefix, "Go to your account"})
		return
	}
	p.render(w, r, http.StatusOK, "verify", v)
}

func (p *Pages) verify(w http.ResponseWriter, r *http.Request) {
	token := formValue(r, "token")
	err := p.limit(r, ratelimit.Credentials)
	var u auth.User
	if err == nil {
		u, err = p.o.Service.VerifyEmail(r.Context(), token)
	}
	switch {
	case errors.Is(err, auth.ErrInvalidLinkToken):
		p.fail(w, r, err, link{Prefix, "Go to your account"})
	case err != nil: // worth a retry: the button again
		v := p.newView(w, r, "Verify your email address")
		v.Token = clip(token, 64)
		p.show(w, r, "verify", v, p.explain(r, err), nil)
	default:
		p.message(w, r, http.StatusOK, "Address verified", []string{"Your email address " + u.Email + " is verified."},
			link{Prefix, "Go to your account"})
	}
}

func (p *Pages) resend(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	err := p.limit(r, ratelimit.Credentials)
	if err == nil {
		err = p.o.Service.ResendVerification(r.Context(), s.access)
	}
	p.accountResult(w, r, s, err, "resent", "", nil)
}

func (p *Pages) forgotPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "forgot", p.newView(w, r, "Forgot your password?"))
}

func (p *Pages) forgot(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(formValue(r, "email"))
	err := p.limit(r, ratelimit.Credentials)
	if err == nil {
		err = p.o.Service.ForgotPassword(r.Context(), email)
	}
	if err != nil {
		v := p.newView(w, r, "Forgot your password?")
		v.values["email"] = clip(email, 320)
		p.show(w, r, "forgot", v, p.explain(r, err), nil)
		return
	}
	// The same answer whether the address has an account or not.
	p.message(w, r, http.StatusOK, "Check your inbox", []string{
		"If " + clip(email, 320) + " is the address of an account, we sent it a link to choose a new password.",
		"The link works for a short while only: open it soon.",
	}, link{Prefix + "login", "Back to sign in"})
}

// resetPage is the landing page of a password reset link: a form for the
// new password, which sends the token along. A GET never uses it up.
func (p *Pages) resetPage(w http.ResponseWriter, r *http.Request) {
	v := p.newView(w, r, "Choose a new password")
	if v.Token = r.URL.Query().Get("token"); v.Token == "" {
		p.fail(w, r, auth.ErrInvalidLinkToken, link{Prefix + "forgot-password", "Ask for a new link"})
		return
	}
	p.render(w, r, http.StatusOK, "reset", v)
}

func (p *Pages) reset(w http.ResponseWriter, r *http.Request) {
	token := formValue(r, "token")
	err := p.limit(r, ratelimit.Credentials)
	if err == nil {
		err = p.o.Service.ResetPassword(r.Context(), token, formValue(r, "new_password"))
	}
	switch {
	case errors.Is(err, auth.ErrInvalidLinkToken):
		p.fail(w, r, err, link{Prefix + "forgot-password", "Ask for a new link"})
	case err != nil:
		v := p.newView(w, r, "Choose a new password")
		v.Token = clip(token, 64)
		p.show(w, r, "reset", v, p.explain(r, err), map[string]string{"password": "new_password"})
	default:
		p.clearSession(w) // every session of the user has ended
		p.message(w, r, http.StatusOK, "Password changed", []string{
			"Your password is changed, and every device signed in to your account was signed out.",
		}, link{Prefix + "login", "Sign in"})
	}
}
