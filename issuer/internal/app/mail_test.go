package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mail"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const testKEK = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// queueMail puts a message in the issuer's mail outbox, as the account
// flows will (sealed under the same key), without relaying it: the
// issuer's relay must. It returns the message's link.
func queueMail(t *testing.T, s *issuer, to string) string {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI(s.cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	outbox, err := mongostore.NewOutbox(t.Context(), mc.Database(s.cfg.MongoDB), mail.OutboxCollection)
	if err != nil {
		t.Fatal(err)
	}
	q, err := mail.NewQueue(t.Context(), mail.Config{SMTPURL: string(s.cfg.SMTPURL), EncryptionKey: s.cfg.KeyEncryptionKey,
		PublicURL: s.cfg.PublicURL, Logger: slog.New(slog.DiscardHandler)}, outbox)
	if err != nil {
		t.Fatal(err)
	}
	link := s.cfg.PublicURL + "/account/reset-password?token=t" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := q.Send(t.Context(), auth.Mail{To: to, Template: auth.MailResetPassword,
		Data: map[string]string{auth.MailLink: link}}); err != nil {
		t.Fatal(err)
	}
	return link
}

// metric reads one sample of /metrics (name with its labels as exposed,
// e.g. `x_total{outcome="ok"}`), or -2 if absent.
func (s *issuer) metric(name string) float64 {
	s.t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(s.do("GET", "/metrics", "").body)
	if m == nil {
		return -2
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// waitMetric waits (within a bound only a hang exceeds) until cond holds
// for the metric.
func (s *issuer) waitMetric(name string, cond func(float64) bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for v := s.metric(name); !cond(v); v = s.metric(name) {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is %v after 30 s", name, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The issuer relays its mail outbox to JOTGUARD_SMTP_URL (Mailpit), links
// built on JOTGUARD_PUBLIC_URL, and counts it in /metrics.
func TestMailRelayed(t *testing.T) {
	api := sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")
	s := startIssuer(t, map[string]string{"JOTGUARD_SMTP_URL": sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL"),
		"JOTGUARD_KEY_ENCRYPTION_KEY": testKEK, "JOTGUARD_PUBLIC_URL": "https://id.example.com",
		"JOTGUARD_MAIL_FROM": "Example ID <id@example.com>"})
	to := randName() + "@example.com"
	link := queueMail(t, s, to)

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(api + "/api/v1/search?query=" + url.QueryEscape("to:"+to))
		if err != nil {
			t.Fatal(err)
		}
		var l struct{ Messages []struct{ ID string } }
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Messages) == 1 {
			var m struct {
				From struct{ Address string }
				Text string
			}
			resp, err := http.Get(api + "/api/v1/message/" + l.Messages[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if err != nil || m.From.Address != "id@example.com" || !strings.Contains(m.Text, link) {
				t.Errorf("message from %q (%v):\n%s\nwant JOTGUARD_MAIL_FROM and the link %s", m.From.Address, err, m.Text, link)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages to %s after 30 s, want 1", len(l.Messages), to)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.waitMetric("jotguard_mail_sent_total", func(v float64) bool { return v == 1 })
	s.waitMetric("jotguard_mail_outbox_pending", func(v float64) bool { return v == 0 })
}

// An SMTP server that is down does not make the issuer unready: mail waits
// in the outbox.
func TestSMTPDownIssuerReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "smtp://" + ln.Addr().String()
	ln.Close()
	s := startIssuer(t, map[string]string{"JOTGUARD_SMTP_URL": down}) // waits for /readyz 200
	queueMail(t, s, randName()+"@example.com")
	s.waitMetric("jotguard_mail_failed_total", func(v float64) bool { return v > 0 })
	if r := s.do("GET", "/readyz", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("/readyz with SMTP down: %d %s", r.StatusCode, r.body)
	}
	if n := s.metric("jotguard_mail_outbox_pending"); n != 1 {
		t.Fatalf("jotguard_mail_outbox_pending = %v, want 1", n)
	}
}

// Without JOTGUARD_SMTP_URL mail is disabled and the issuer serves.
func TestMailDisabled(t *testing.T) {
	s := startIssuer(t, nil)
	if s.cfg.SMTPURL != "" || s.cfg.PublicURL != testIssuer {
		t.Fatalf("SMTP %q, public URL %q", s.cfg.SMTPURL, s.cfg.PublicURL)
	}
	for _, name := range []string{"jotguard_mail_queued_total", "jotguard_mail_sent_total", "jotguard_mail_failed_total",
		"jotguard_mail_dropped_total", "jotguard_mail_outbox_pending"} {
		if v := s.metric(name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
}
