package pages

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/ratelimit"
)

// requireSession returns the request's session; without one it has
// answered already: a redirect to the sign-in page, or the error.
func (p *Pages) requireSession(w http.ResponseWriter, r *http.Request) (signedIn, bool) {
	s, err := p.session(w, r)
	switch {
	case errors.Is(err, errSignedOut):
		done := ""
		if r.Method == http.MethodPost {
			done = "?done=expired"
		}
		redirect(w, r, Prefix+"login"+done)
		return s, false
	case err != nil:
		p.fail(w, r, err, link{r.URL.Path, "Try again"})
		return s, false
	}
	return s, true
}

// account is the account page.
func (p *Pages) account(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	v, err := p.accountView(w, r, s)
	if err != nil {
		p.accountGone(w, r, err)
		return
	}
	v.Notice = notices[r.URL.Query().Get("done")]
	p.render(w, r, http.StatusOK, "account", v)
}

// accountGone answers a request whose session ended while it was served,
// or that failed.
func (p *Pages) accountGone(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrInvalidAccessToken) {
		p.clearSession(w)
		redirect(w, r, Prefix+"login?done=expired")
		return
	}
	p.fail(w, r, err, link{Prefix, "Try again"})
}

// accountView is the account page of session s: the user, the profile
// form's values, the sessions (this one first, then the latest used).
func (p *Pages) accountView(w http.ResponseWriter, r *http.Request, s signedIn) (*view, error) {
	all, current, err := p.o.Service.Sessions(r.Context(), s.access)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b auth.Session) int { // this one first, then the latest used
		return cmp.Or(compareBool(b.ID == current, a.ID == current), b.LastUsedAt.Compare(a.LastUsedAt), cmp.Compare(a.ID, b.ID))
	})
	v := p.newView(w, r, "Your account")
	u := s.user
	v.User = &u
	v.values["username"], v.values["first_name"], v.values["last_name"] = u.Username, u.FirstName, u.LastName
	if p.o.Federation != nil {
		m, err := p.o.Service.SignInMethods(r.Context(), s.access)
		if err != nil {
			return nil, err
		}
		v.Federation, v.Password = true, m.Password
		u.Identities = m.Identities
		v.Identities = p.identityViews(u)
	}
	now := p.o.Now()
	for _, sess := range all {
		v.Sessions = append(v.Sessions, newSessionView(sess, sess.ID == current, now))
	}
	return v, nil
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// accountResult ends an account form: on success a redirect to the account
// page with the notice done; on failure the account page with the error
// next to the form's inputs (keep: an input whose value is shown again).
func (p *Pages) accountResult(w http.ResponseWriter, r *http.Request, s signedIn, err error, done, keep string, rename map[string]string) {
	if err == nil {
		redirect(w, r, Prefix+"?done="+done)
		return
	}
	if errors.Is(err, auth.ErrInvalidAccessToken) {
		p.accountGone(w, r, err)
		return
	}
	f := p.explain(r, err)
	v, verr := p.accountView(w, r, s)
	if verr != nil {
		p.accountGone(w, r, verr)
		return
	}
	if keep != "" {
		v.values[keep] = clip(strings.TrimSpace(formValue(r, keep)), 320)
	}
	p.show(w, r, "account", v, f, rename)
}

func (p *Pages) profile(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	field := func(name string) *string { v := formValue(r, name); return &v }
	_, err := p.o.Service.UpdateProfile(r.Context(), auth.ProfileInput{AccessToken: s.access,
		Username: field("username"), FirstName: field("first_name"), LastName: field("last_name")})
	if err != nil {
		// Show what was typed, not what is stored.
		s.user.Username, s.user.FirstName, s.user.LastName = clip(formValue(r, "username"), 320),
			clip(formValue(r, "first_name"), 320), clip(formValue(r, "last_name"), 320)
	}
	p.accountResult(w, r, s, err, "profile", "", nil)
}

func (p *Pages) changeEmail(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	email := formValue(r, "new_email")
	err := error(&auth.ValidationError{Fields: []auth.FieldError{{Field: "email", Reason: "is required"}}})
	if strings.TrimSpace(email) != "" {
		_, err = p.o.Service.UpdateProfile(r.Context(), auth.ProfileInput{AccessToken: s.access, Email: &email})
	}
	p.accountResult(w, r, s, err, "email", "new_email", map[string]string{"email": "new_email"})
}

func (p *Pages) changePassword(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	err := p.limit(r, ratelimit.Credentials)
	if err == nil {
		err = p.o.Service.ChangePassword(r.Context(), auth.ChangePasswordInput{AccessToken: s.access,
			CurrentPassword: formValue(r, "current_password"), NewPassword: formValue(r, "new_password"),
			Network: ratelimit.NetworkOf(clientIP(r))})
	}
	p.accountResult(w, r, s, err, "password", "", map[string]string{"password": "current_password"})
}

func (p *Pages) revokeSession(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	err := p.o.Service.RevokeSession(r.Context(), s.access, formValue(r, "sid"))
	if errors.Is(err, auth.ErrSessionNotFound) {
		redirect(w, r, Prefix+"?done=not-revoked")
		return
	}
	p.accountResult(w, r, s, err, "revoked", "", nil)
}

func (p *Pages) deleteAccount(w http.ResponseWriter, r *http.Request) {
	s, ok := p.requireSession(w, r)
	if !ok {
		return
	}
	err := p.limit(r, ratelimit.Credentials)
	if err == nil {
		err = p.o.Service.DeleteAccount(r.Context(), auth.DeleteAccountInput{AccessToken: s.access,
			Password: formValue(r, "delete_password"), Network: ratelimit.NetworkOf(clientIP(r))})
	}
	if err != nil {
		p.accountResult(w, r, s, err, "", "", map[string]string{"password": "delete_password"})
		return
	}
	p.clearSession(w)
	p.newCSRF(w, r)
	p.message(w, r, http.StatusOK, "Account deleted", []string{
		"Your account is deleted, and every device signed in to it was signed out.",
	}, link{Prefix + "register", "Create a new account"})
}

// sessionView is one session as the account page lists it.
type sessionView struct {
	ID, Device, IP                         string
	Current                                bool
	LastUsedISO, LastUsedText, LastUsedAgo string
	CreatedISO, CreatedText                string
}

func newSessionView(s auth.Session, current bool, now time.Time) sessionView {
	const text = "2 Jan 2006 15:04 MST"
	return sessionView{ID: s.ID, Device: deviceName(s.UserAgent), IP: s.IP, Current: current,
		LastUsedISO: s.LastUsedAt.UTC().Format(time.RFC3339), LastUsedText: s.LastUsedAt.UTC().Format(text),
		LastUsedAgo: ago(now.Sub(s.LastUsedAt)),
		CreatedISO:  s.CreatedAt.UTC().Format(time.RFC3339), CreatedText: s.CreatedAt.UTC().Format(text)}
}

// ago says how long ago, roughly.
func ago(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return strconv.Itoa(n) + " " + unit + "s ago"
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

// deviceName is a short name of the browser and system of a user agent:
// "Chrome on Linux". A client that is no browser shows as its agent.
func deviceName(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chrome/", "Chrome"}, {"CriOS/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	}
	return clip(ua, 80)
}
