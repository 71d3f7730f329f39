// Package mail sends the issuer's mail: it renders the domain's messages
// (auth.Mail: a template name and its data) from embedded text and HTML
// templates, queues them durably in an auth.Outbox (in production
// mongostore's OutboxCollection), and a relay (Queue.Run, in every issuer
// replica, one at a time under the outbox's lease) delivers them over SMTP
// with go-mail.
//
// Send renders at once (a malformed Mail is the caller's bug and fails
// there) and stores the rendered message, so a message goes out as it was
// rendered even across a deploy that changes the templates. The stored
// message holds its links, with their one-time tokens, until it is sent:
// with an encryption key (JOTGUARD_KEY_ENCRYPTION_KEY) it is sealed with
// AES-256-GCM under a key derived from it (see payload.go).
//
// Delivery: an SMTP outage, a timeout or a 4xx answer never loses a
// message; it is retried with capped exponential backoff until the server
// takes it. A 5xx answer to its recipient or its content drops it, with a
// log line. A message is deleted from the outbox once the server took it;
// a crash between the two sends it again (at-least-once; every attempt
// carries the same Message-ID).
package mail

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
)

// OutboxCollection is the MongoDB collection of the mail queue (its lease is
// in OutboxCollection + "_lease").
const OutboxCollection = "mail_outbox"

// DefaultFrom is JOTGUARD_MAIL_FROM's default.
const DefaultFrom = "jotguard <no-reply@localhost>"

// Config configures a Queue.
type Config struct {
	// SMTPURL is smtp://[user:password@]host[:port] or smtps://…; empty
	// disables mail: Send logs and drops every message.
	SMTPURL   string
	From      string // default DefaultFrom
	PublicURL string // the site named in every message's footer
	Product   string // default "jotguard"
	// EncryptionKey (32 bytes) seals queued messages; nil stores them in
	// the clear (the issuer warns at start).
	EncryptionKey []byte

	SendTimeout  time.Duration // bounds a connection attempt and each message; default 20s
	RetryMin     time.Duration // first retry after a failure; default 1s
	RetryMax     time.Duration // cap of the retry backoff; default 1m
	PollInterval time.Duration // how often the relay looks at the outbox; default 1s
	LeaseTTL     time.Duration // relay lease; default and minimum 4×SendTimeout
	Batch        int           // messages read at once; default 50
	Logger       *slog.Logger
}

// Stats are cumulative counters, for metrics.
type Stats struct {
	Queued  uint64 // messages put in the outbox
	Sent    uint64 // messages the SMTP server took
	Failed  uint64 // failed delivery attempts (each is retried)
	Dropped uint64 // messages not sent on purpose: refused for good, or mail is disabled
}

// Queue implements auth.Mailer on an outbox, and relays it (Run).
type Queue struct {
	cfg    Config
	tpl    *templates
	smtp   *SMTP       // nil: mail disabled
	aead   cipher.AEAD // nil: stored in the clear
	outbox auth.Outbox
	owner  string // of the outbox lease
	log    *slog.Logger
	wake   chan struct{}

	queued, sent, failed, dropped atomic.Uint64
}

var _ auth.Mailer = (*Queue)(nil)

// NewQueue returns a Queue on outbox. It needs no SMTP server to be up.
func NewQueue(ctx context.Context, cfg Config, outbox auth.Outbox) (*Queue, error) {
	if outbox == nil {
		return nil, fmt.Errorf("%w: an outbox is required", ErrConfig)
	}
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	if cfg.Product == "" {
		cfg.Product = "jotguard"
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 20 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(time.Minute, cfg.RetryMin)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	// The lease must outlast a message in flight (a connection attempt and
	// the message, each up to SendTimeout, after a renewal up to a third of
	// the lease old), so that no other relay sends it meanwhile.
	cfg.LeaseTTL = max(cfg.LeaseTTL, 4*cfg.SendTimeout)
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, tpl: tpl, outbox: outbox, owner: "mail-relay-" + rand.Text(),
		log: cfg.Logger.With("component", "mail"), wake: make(chan struct{}, 1)}
	if len(cfg.EncryptionKey) > 0 {
		if q.aead, err = newAEAD(cfg.EncryptionKey); err != nil {
			return nil, err
		}
	}
	if cfg.SMTPURL == "" {
		q.log.WarnContext(ctx, "MAIL IS DISABLED: JOTGUARD_SMTP_URL is not set; every message (email verification, password reset, notices) is dropped")
		return q, nil
	}
	if q.smtp, err = NewSMTP(cfg.SMTPURL, cfg.From, cfg.SendTimeout); err != nil {
		return nil, err
	}
	q.log.InfoContext(ctx, "mail: queued in MongoDB, sent over SMTP", "smtp", q.smtp.String(), "from", cfg.From,
		"encrypted_at_rest", q.aead != nil)
	return q, nil
}

// Enabled reports whether mail is sent (JOTGUARD_SMTP_URL is set).
func (q *Queue) Enabled() bool { return q.smtp != nil }

// Send implements auth.Mailer: it renders m and queues it in the outbox.
// Cancelling ctx does not abandon a message being queued.
func (q *Queue) Send(ctx context.Context, m auth.Mail) error {
	c, err := q.tpl.render(m, q.cfg.Product, q.cfg.PublicURL)
	if err != nil {
		return err
	}
	if q.smtp == nil {
		q.dropped.Add(1)
		q.log.WarnContext(ctx, "mail is disabled (JOTGUARD_SMTP_URL is not set): message dropped", "mail", m)
		return nil
	}
	payload, err := encode(queued{Template: m.Template, To: m.To, Subject: c.Subject, Text: c.Text, HTML: c.HTML,
		MessageID: strings.ToLower(rand.Text()) + "@" + q.smtp.domain, Date: time.Now().UTC()}, q.aead)
	if err != nil {
		return fmt.Errorf("mail: encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := q.outbox.Enqueue(ctx, auth.OutboxEntry{Key: recipientKey(m.To), Payload: payload}); err != nil {
		return fmt.Errorf("%w: mail: queue %s: %w", auth.ErrUnavailable, m.Template, err)
	}
	q.queued.Add(1)
	q.log.DebugContext(ctx, "mail queued", "mail", m)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// recipientKey is the outbox key of a message: a hash of the recipient, so
// that the address is not stored in the clear next to the sealed payload.
func recipientKey(to string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(to)))
	return hex.EncodeToString(sum[:16])
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	return Stats{Queued: q.queued.Load(), Sent: q.sent.Load(), Failed: q.failed.Load(), Dropped: q.dropped.Load()}
}

// Pending counts the messages waiting in the outbox, of every replica.
func (q *Queue) Pending(ctx context.Context) (int64, error) {
	n, err := q.outbox.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("mail: count outbox: %w", err)
	}
	return n, nil
}
