package pages

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// failure is how a page tells of an error: a status, a sentence at the
// top, and a sentence next to each input at fault.
type failure struct {
	status int
	text   string
	fields map[string]fieldText // by the Service's field name
	retry  time.Duration        // Retry-After, for 429 and 503
}

// explain turns an error of the Service (or of a limit) into what the page
// says: the same errors the API answers as problem documents, in words.
// An error it does not know is logged and shown as ours.
func (p *Pages) explain(r *http.Request, err error) failure {
	if v, ok := errors.AsType[*auth.ValidationError](err); ok {
		f := failure{status: http.StatusBadRequest, text: "Check the fields marked below.", fields: map[string]fieldText{}}
		for _, fe := range v.Fields {
			f.fields[fe.Field] = fieldText{reason: fe.Reason}
		}
		return f
	}
	if rl, ok := errors.AsType[*auth.RateLimitError](err); ok {
		return failure{status: http.StatusTooManyRequests, retry: rl.RetryAfter,
			text: "Too many attempts from your network. Try again " + inAbout(rl.RetryAfter) + "."}
	}
	field := func(status int, name, text string) failure {
		return failure{status: status, text: "Check the fields marked below.", fields: map[string]fieldText{name: {sentence: text}}}
	}
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return failure{status: http.StatusUnauthorized, text: "The email address, username or password is wrong."}
	case errors.Is(err, auth.ErrWrongPassword):
		return field(http.StatusForbidden, "password", "The password is wrong.")
	case errors.Is(err, auth.ErrEmailTaken):
		return field(http.StatusConflict, "email", "Another account uses this address. Sign in to it, or reset its password.")
	case errors.Is(err, auth.ErrUsernameTaken):
		return field(http.StatusConflict, "username", "Another account has this username.")
	case errors.Is(err, auth.ErrDisabled):
		return failure{status: http.StatusForbidden, text: "This account is disabled."}
	case errors.Is(err, auth.ErrEmailNotVerified):
		return failure{status: http.StatusForbidden,
			text: "Verify your email address first: open the link we mailed you when you registered."}
	case errors.Is(err, auth.ErrInvalidLinkToken):
		return failure{status: http.StatusBadRequest, text: "This link is not valid: it is incomplete, has expired or was used already."}
	case errors.Is(err, auth.ErrSessionNotFound):
		return failure{status: http.StatusNotFound, text: "That session has ended already."}
	case errors.Is(err, auth.ErrRateLimited):
		return failure{status: http.StatusTooManyRequests, retry: time.Second, text: "Too many attempts. Try again in a moment."}
	case errors.Is(err, auth.ErrBusy):
		return failure{status: http.StatusServiceUnavailable, retry: time.Second, text: "The server is busy. Try again in a moment."}
	case errors.Is(err, auth.ErrExternalEmailInUse):
		return failure{status: http.StatusConflict,
			text: "An account already uses this email address, and it cannot be linked this way. Sign in to it with its password."}
	case errors.Is(err, auth.ErrExternalNoEmail):
		return failure{status: http.StatusBadRequest, text: "The provider did not tell us a usable email address, which an account needs."}
	case errors.Is(err, auth.ErrIdentityTaken):
		return failure{status: http.StatusConflict, text: "That account at the provider signs in to another account here."}
	case errors.Is(err, auth.ErrLinkExpired):
		return failure{status: http.StatusBadRequest, text: "This sign-in can no longer be linked. Start it again."}
	case errors.Is(err, auth.ErrIdentityNotFound):
		return failure{status: http.StatusNotFound, text: "That account was not linked."}
	case errors.Is(err, auth.ErrLastSignInMethod):
		return failure{status: http.StatusConflict,
			text: "This is your only way to sign in: set a password (Forgot your password?) or link another account first."}
	case errors.Is(err, auth.ErrUnavailable):
		return failure{status: http.StatusServiceUnavailable, retry: time.Second,
			text: "The service is unavailable right now. Try again in a moment."}
	}
	p.log.ErrorContext(r.Context(), "page request failed: internal error", "path", r.URL.Path, "err", err)
	return failure{status: http.StatusInternalServerError, text: "Something went wrong on our side. Try again later."}
}

// fieldText is what to say next to an input: a whole sentence, or the
// Service's reason, said after the input's label.
type fieldText struct{ sentence, reason string }

func (t fieldText) on(input string) string {
	if t.sentence != "" {
		return t.sentence
	}
	label := input
	if s, ok := fieldSpecs[input]; ok {
		label = s.Label
	}
	return fieldMessage(label, t.reason)
}

// inAbout says when a retry may pass, in words.
func inAbout(d time.Duration) string {
	switch s := int((d + time.Second - 1) / time.Second); {
	case s <= 1:
		return "in a second"
	case s < 90:
		return "in " + strconv.Itoa(s) + " seconds"
	default:
		return fmt.Sprintf("in %d minutes", (s+59)/60)
	}
}

// show puts f on v (its field errors under the page's input names: rename
// maps a Service field to the page's, when they differ) and writes the
// page with f's status.
func (p *Pages) show(w http.ResponseWriter, r *http.Request, page string, v *view, f failure, rename map[string]string) {
	v.Error = f.text
	for name, text := range f.fields {
		if to, ok := rename[name]; ok {
			name = to
		}
		v.errors[name] = text.on(name)
	}
	if f.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((f.retry+time.Second-1)/time.Second))))
	}
	p.render(w, r, f.status, page, v)
}

// fail writes the message page of err, with a link to try again.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error, again link) {
	f := p.explain(r, err)
	v := p.newView(w, r, "Something went wrong")
	v.Lines = []string{f.text}
	if again.Href != "" {
		v.Next = &again
	}
	p.show(w, r, "message", v, failure{status: f.status, retry: f.retry}, nil)
}
