package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// ErrConfig: a bad JOTGUARD_SMTP_URL or JOTGUARD_MAIL_FROM.
var ErrConfig = errors.New("mail: bad configuration")

// SMTP is the adapter to one SMTP server (go-mail). smtp://host[:port]
// (default port 587) upgrades the connection with STARTTLS when the server
// offers it, and sends in the clear when it does not; smtps://host[:port]
// (default 465) speaks TLS from the first byte. Certificates are verified
// against host. A user and password in the URL authenticate (SMTP AUTH,
// the strongest mechanism both sides know; PLAIN and LOGIN only over TLS).
type SMTP struct {
	client  *gomail.Client // settings; each connection is its own smtp.Client
	from    string
	domain  string // of from: the right side of Message-IDs
	display string // the URL without its password, for logs
}

// NewSMTP returns the adapter for rawURL. timeout bounds connecting (with
// TLS and AUTH) and each message.
func NewSMTP(rawURL, from string, timeout time.Duration) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: JOTGUARD_SMTP_URL: not a URL", ErrConfig) // the text may hold a password
	}
	fa, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("%w: JOTGUARD_MAIL_FROM %q: %w", ErrConfig, from, err)
	}
	opts, err := clientOptions(u, timeout)
	if err != nil {
		return nil, err
	}
	c, err := gomail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: JOTGUARD_SMTP_URL: %w", ErrConfig, err)
	}
	domain := fa.Address[strings.LastIndex(fa.Address, "@")+1:]
	return &SMTP{client: c, from: fa.String(), domain: domain, display: u.Redacted()}, nil
}

// clientOptions turns a JOTGUARD_SMTP_URL into go-mail options.
func clientOptions(u *url.URL, timeout time.Duration) ([]gomail.Option, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: JOTGUARD_SMTP_URL %s: "+format, append([]any{ErrConfig, u.Redacted()}, a...)...)
	}
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	opts := []gomail.Option{gomail.WithTimeout(timeout)}
	port := 0
	switch u.Scheme {
	case "smtp":
		port = 587
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, bad("want smtp:// or smtps://")
	}
	if u.Hostname() == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("bad port %q", p)
		}
		port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("want no path, query or fragment")
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return opts, nil
}

// String is the server's URL without its password.
func (s *SMTP) String() string { return s.display }

// conn is one connection to the server, for a batch of messages.
type conn struct {
	s *SMTP
	c *smtp.Client
}

// dial connects (with STARTTLS and AUTH as configured).
func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("mail: connect to %s: %w", s.display, err)
	}
	return &conn{s: s, c: c}, nil
}

// close says QUIT, or drops the connection if the server does not answer.
func (c *conn) close() {
	if err := c.s.client.CloseWithSMTPClient(c.c); err != nil {
		_ = c.c.Close()
	}
}

// outcome is what became of one message.
type outcome int

const (
	delivered outcome = iota // the server took it
	deferred                 // this message failed for now (a 4xx, a broken transfer): retry it later
	refused                  // the server refused this message for good (a 5xx to its recipient or its content): drop it
	outage                   // the server or the connection failed, not this message: retry everything later
)

func (o outcome) String() string {
	return [...]string{"delivered", "deferred", "refused", "outage"}[o]
}

// result is the outcome of sending one message. reuse says whether the
// connection can carry the next one.
type result struct {
	outcome outcome
	reuse   bool
	code    int // the server's reply code, 0 if none
	err     error
}

// send sends q over c. The connection's timeout bounds it; cancelling ctx
// drops the connection.
func (c *conn) send(ctx context.Context, q queued) result {
	m, err := c.s.message(q)
	if err != nil {
		return result{outcome: refused, reuse: true, err: err}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.Close() })
	defer stop()
	err = c.s.client.SendWithSMTPClient(c.c, m)
	return classify(err, m.IsDelivered())
}

// message builds the MIME message: multipart/alternative, text then HTML.
func (s *SMTP) message(q queued) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(s.from); err != nil {
		return nil, err
	}
	if err := m.To(q.To); err != nil {
		return nil, err
	}
	m.Subject(q.Subject)
	m.SetMessageIDWithValue(q.MessageID)
	m.SetDateWithValue(q.Date)
	m.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	m.SetBodyString(gomail.TypeTextPlain, q.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, q.HTML)
	return m, nil
}

// classify maps go-mail's result for one message onto an outcome. Only a
// 5xx answer to the message's recipient or content drops it: a 5xx to
// MAIL FROM says the sender (JOTGUARD_MAIL_FROM) or the account is not
// allowed, which every message shares, so it is an outage to be fixed,
// and the messages wait.
func classify(err error, isDelivered bool) result {
	var se *gomail.SendError
	switch {
	case err == nil:
		return result{outcome: delivered, reuse: true}
	case isDelivered: // the server took it; the RSET after it failed
		return result{outcome: delivered, err: err}
	case !errors.As(err, &se):
		return result{outcome: outage, err: err}
	}
	code := se.ErrorCode()
	permanent := code >= 500 && code < 600
	switch se.Reason {
	case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		switch {
		case permanent:
			return result{outcome: refused, reuse: true, code: code, err: err}
		case code >= 400:
			return result{outcome: deferred, reuse: true, code: code, err: err}
		}
		// No reply: the connection broke during the transfer. Whether the
		// server kept the message is unknown; it is sent again.
		return result{outcome: deferred, code: code, err: err}
	case gomail.ErrWriteContent:
		return result{outcome: deferred, code: code, err: err}
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		return result{outcome: refused, reuse: true, code: code, err: err} // this message can never go out
	}
	// ErrConnCheck, ErrSMTPMailFrom, ErrSMTPReset, ErrAmbiguous: the
	// connection or the sender.
	return result{outcome: outage, code: code, err: err}
}
