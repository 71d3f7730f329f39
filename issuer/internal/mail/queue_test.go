package mail

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
)

// eventually waits (within a bound only a hang exceeds) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after 30 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reset(to string) auth.Mail {
	return auth.Mail{To: to, Template: auth.MailResetPassword,
		Data: map[string]string{auth.MailLink: "https://id.example.com/account/reset-password?token=secret-" + to}}
}

// The relay sends what was queued; a recipient refused for good (550) is
// dropped and one deferred (451, greylisting) is sent on a later attempt,
// while the others go on. Logs never show a link's token.
func TestQueueRelay(t *testing.T) {
	var mu sync.Mutex
	greyTries := 0
	srv := StartLoopbackSMTP(t, "", func(verb, arg string) string {
		switch {
		case verb == "RCPT" && strings.Contains(arg, "bounce@"):
			return "550 5.1.1 no such user"
		case verb == "RCPT" && strings.Contains(arg, "grey@"):
			mu.Lock()
			defer mu.Unlock()
			if greyTries++; greyTries == 1 {
				return "451 4.7.1 greylisted, try again later"
			}
		}
		return ""
	})
	var logs LogBuffer
	outbox := memstore.NewOutbox()
	q, err := NewQueue(t.Context(), Config{SMTPURL: "smtp://" + srv.Addr, PublicURL: "https://id.example.com",
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, outbox)
	if err != nil {
		t.Fatal(err)
	}
	to := []string{"ada@example.com", "bounce@example.com", "grey@example.com", "bob@example.com"}
	for _, a := range to {
		if err := q.Send(t.Context(), reset(a)); err != nil {
			t.Fatalf("Send(%s): %v", a, err)
		}
	}
	StartRelay(t, q)
	eventually(t, "the outbox is empty", func() bool { n, _ := q.Pending(t.Context()); return n == 0 })

	var got []string
	for _, r := range srv.Received() {
		got = append(got, r.To...)
	}
	slices.Sort(got)
	want := []string{"<ada@example.com>", "<bob@example.com>", "<grey@example.com>"}
	if !slices.Equal(got, want) {
		t.Errorf("delivered to %v, want %v once each", got, want)
	}
	if st := q.Stats(); st.Queued != 4 || st.Sent != 3 || st.Dropped != 1 || st.Failed != 1 {
		t.Errorf("Stats() = %+v, want 4 queued, 3 sent, 1 dropped, 1 failed", st)
	}
	if l := logs.String(); strings.Contains(l, "secret-") {
		t.Errorf("a link's token is in the logs:\n%s", l)
	} else if !strings.Contains(l, "dropped") || !strings.Contains(l, "b…@example.com") {
		t.Errorf("the drop is not logged with the masked recipient:\n%s", l)
	}
}

// failingOutbox is an outbox whose MongoDB is down.
type failingOutbox struct{ *memstore.Outbox }

func (failingOutbox) Enqueue(context.Context, ...auth.OutboxEntry) error {
	return errors.New("server selection timeout")
}

// Send fails only when the message cannot be queued, with
// auth.ErrUnavailable; an SMTP server that is down does not matter.
func TestSendUnavailable(t *testing.T) {
	q, err := NewQueue(t.Context(), Config{SMTPURL: "smtp://127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)},
		failingOutbox{memstore.NewOutbox()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(t.Context(), reset("ada@example.com")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Send with the outbox down: %v, want ErrUnavailable", err)
	}

	outbox := memstore.NewOutbox()
	q, err = NewQueue(t.Context(), Config{SMTPURL: "smtp://127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)}, outbox)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // a client that went away does not cancel the queuing
	if err := q.Send(ctx, reset("ada@example.com")); err != nil {
		t.Fatalf("Send with SMTP down: %v, want nil", err)
	}
	if n, _ := outbox.Pending(t.Context()); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
	if err := q.Send(t.Context(), auth.Mail{To: "ada@example.com", Template: "nope"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Send of an unknown template: %v, want ErrMalformed", err)
	}
}

// Without JOTGUARD_SMTP_URL, mail is disabled: one warning at start, and
// Send logs and drops (nil), without the message's data.
func TestDisabled(t *testing.T) {
	var logs LogBuffer
	outbox := memstore.NewOutbox()
	q, err := NewQueue(t.Context(), Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, outbox)
	if err != nil {
		t.Fatal(err)
	}
	if q.Enabled() || !strings.Contains(logs.String(), "MAIL IS DISABLED") {
		t.Fatalf("Enabled() = %v; log:\n%s", q.Enabled(), logs.String())
	}
	if err := q.Send(t.Context(), reset("ada@example.com")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n, _ := outbox.Pending(t.Context()); n != 0 || q.Stats().Dropped != 1 {
		t.Fatalf("pending %d, stats %+v; want nothing queued and 1 dropped", n, q.Stats())
	}
	if l := logs.String(); !strings.Contains(l, "dropped") || strings.Contains(l, "secret-") || strings.Contains(l, "ada@") {
		t.Fatalf("log:\n%s\nwant the drop, without the token or the full address", l)
	}
	if err := q.Send(t.Context(), auth.Mail{To: "ada@example.com", Template: auth.MailResetPassword}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a malformed Mail while disabled: %v, want ErrMalformed", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := q.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
