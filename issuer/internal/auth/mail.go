package auth

import (
	"context"
	"log/slog"
	"strings"
)

// Mail templates: what a message says. The mail adapter renders each as a
// subject, a text part and an HTML part; the Data each needs is listed.
const (
	MailVerifyEmail     = "verify_email"     // a link that confirms the address: MailLink, MailEmail
	MailResetPassword   = "reset_password"   // a link that sets a new password: MailLink
	MailEmailChanged    = "email_changed"    // to the old address, once a change took effect: MailNewEmail
	MailPasswordChanged = "password_changed" // the password was changed or reset
	MailAccountDeleted  = "account_deleted"  // the account was deleted
)

// Keys of Mail.Data.
const (
	MailLink     = "link"      // an absolute URL on JOTGUARD_PUBLIC_URL, carrying a one-time token
	MailEmail    = "email"     // the address being verified
	MailNewEmail = "new_email" // the address that replaced the recipient's
)

// Mail is one message to a user: the template says what it is about and
// Data fills it in; the Mailer renders it. Data may hold secrets (a link's
// token): a Mail logs only its template and a masked recipient.
type Mail struct {
	To       string            // the recipient's address (canonical, as in User.Email)
	Template string            // one of the Mail* template names
	Data     map[string]string // the keys the template needs
}

// LogValue implements slog.LogValuer: no Data, and the recipient masked.
func (m Mail) LogValue() slog.Value {
	return slog.GroupValue(slog.String("template", m.Template), slog.String("to", MaskEmail(m.To)))
}

// MaskEmail shows an address's first character and its domain, for logs:
// "a…@example.com".
func MaskEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "…"
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

// Mailer sends mail (mail.Queue). Send returns nil once the message is
// durably queued for delivery, which is retried until the server takes
// it (an SMTP outage never fails Send), or when it was dropped on purpose
// because mail is disabled (the Mailer logs that). An error wraps
// ErrUnavailable when the message could not be queued; any other error is
// a malformed Mail (an unknown template, missing Data, a bad address): a
// bug of the caller.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
