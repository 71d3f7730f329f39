package mail_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mail"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// These tests run against the dev stack's servers (`make test`): FerretDB
// for the outbox, Mailpit for SMTP, read back through Mailpit's HTTP API.

// mongoOutbox returns a fresh database's mail outbox: open gives one
// replica's handle on it (each call another), stored reads its documents as
// they are stored.
func mongoOutbox(t *testing.T) (open func() *mongostore.Outbox, stored func() [][]byte) {
	t.Helper()
	db := testenv.MongoDB(t)
	open = func() *mongostore.Outbox {
		t.Helper()
		o, err := mongostore.NewOutbox(t.Context(), db, mail.OutboxCollection)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	stored = func() [][]byte {
		t.Helper()
		cur, err := db.Collection(mail.OutboxCollection).Find(t.Context(), map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(t.Context())
		var docs [][]byte
		for cur.Next(t.Context()) {
			docs = append(docs, slices.Clone([]byte(cur.Current)))
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		return docs
	}
	return open, stored
}

// newQueue returns a Queue on outbox, with short retries.
func newQueue(t *testing.T, outbox auth.Outbox, cfg mail.Config) *mail.Queue {
	t.Helper()
	cfg.PublicURL = "https://id.example.com"
	cfg.RetryMin, cfg.RetryMax, cfg.PollInterval = 50*time.Millisecond, 500*time.Millisecond, 100*time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
		if testing.Verbose() {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}
	q, err := mail.NewQueue(t.Context(), cfg, outbox)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// address returns a recipient no other test uses.
func address(name string) string {
	return name + "-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
}

func verify(to string) (auth.Mail, string) {
	link := "https://id.example.com/account/verify-email?token=" + rand.Text()
	return auth.Mail{To: to, Template: auth.MailVerifyEmail,
		Data: map[string]string{auth.MailLink: link, auth.MailEmail: to}}, link
}

// mailpit reads Mailpit's HTTP API (JOTGUARD_MAILPIT_URL).
type mailpit struct {
	t    *testing.T
	base string
}

type message struct {
	ID        string
	MessageID string
	Subject   string
	From      struct{ Name, Address string }
	To        []struct{ Address string }
	Text      string
	HTML      string
}

func (m mailpit) get(path string, out any) {
	m.t.Helper()
	resp, err := http.Get(m.base + path)
	if err != nil {
		m.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		m.t.Fatalf("GET %s: %v", path, err)
	}
}

// to returns the messages to addr.
func (m mailpit) to(addr string) []message {
	m.t.Helper()
	var l struct{ Messages []message }
	m.get("/api/v1/search?query="+url.QueryEscape("to:"+addr), &l)
	var out []message // the search matches substrings: keep the exact address
	for _, msg := range l.Messages {
		if len(msg.To) == 1 && msg.To[0].Address == addr {
			out = append(out, msg)
		}
	}
	return out
}

// await waits (within a bound only a hang exceeds) until addr has n
// messages, and returns them.
func (m mailpit) await(addr string, n int) []message {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := m.to(addr)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				m.t.Fatalf("%d messages to %s, want %d", len(got), addr, n)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m mailpit) message(id string) message {
	m.t.Helper()
	var msg message
	m.get("/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

// drained waits until q's outbox is empty.
func drained(t *testing.T, q *mail.Queue) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := q.Pending(t.Context())
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued after 30 s (%v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A message queued in MongoDB arrives at Mailpit: subject, sender, text and
// HTML parts, the link in both (in the HTML as a link and as text), and
// the headers of an automatic message.
func TestDeliveredToMailpit(t *testing.T) {
	smtpURL := sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL")
	mp := mailpit{t, sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")}
	open, _ := mongoOutbox(t)
	q := newQueue(t, open(), mail.Config{SMTPURL: smtpURL, EncryptionKey: bytes.Repeat([]byte{1}, 32)})
	mail.StartRelay(t, q)

	to := address("ada")
	m, link := verify(to)
	if err := q.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := mp.message(mp.await(to, 1)[0].ID)
	if got.Subject != "Confirm your email address for jotguard" || got.From.Address != "no-reply@localhost" ||
		got.From.Name != "jotguard" || len(got.To) != 1 || got.To[0].Address != to {
		t.Errorf("subject %q, from %q <%s>, to %v", got.Subject, got.From.Name, got.From.Address, got.To)
	}
	if !strings.Contains(got.Text, link) || !strings.Contains(got.Text, to) {
		t.Errorf("text part lacks the link or the address:\n%s", got.Text)
	}
	if !strings.Contains(got.HTML, `href="`+link+`"`) || strings.Count(got.HTML, link) < 2 {
		t.Errorf("HTML part lacks the link, as a link and as text:\n%s", got.HTML)
	}
	var headers map[string][]string
	mp.get("/api/v1/message/"+got.ID+"/headers", &headers)
	if h := headers["Auto-Submitted"]; len(h) != 1 || h[0] != "auto-generated" {
		t.Errorf("Auto-Submitted: %v", h)
	}
	if !strings.HasSuffix(got.MessageID, "@localhost") {
		t.Errorf("Message-ID %q, want one on the sender's domain", got.MessageID)
	}
	drained(t, q)
	if st := q.Stats(); st.Queued != 1 || st.Sent != 1 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v", st)
	}
}

// While the SMTP server is down, Send still succeeds at once and nothing is
// lost: once it is back, every message arrives, exactly once.
func TestSMTPOutage(t *testing.T) {
	stack := sdktest.StartDevstack(t, "mail")
	mp := mailpit{t, stack.Env("JOTGUARD_MAILPIT_URL")}
	open, _ := mongoOutbox(t)
	q := newQueue(t, open(), mail.Config{SMTPURL: stack.Env("JOTGUARD_SMTP_URL"), SendTimeout: 2 * time.Second})
	mail.StartRelay(t, q)

	stack.Stop()
	to := address("outage")
	for i := range 5 {
		m, _ := verify(fmt.Sprintf("%d.%s", i, to))
		if err := q.Send(t.Context(), m); err != nil {
			t.Fatalf("Send %d with the SMTP server down: %v", i, err)
		}
	}
	// Down: they wait in the outbox, and attempts fail.
	deadline := time.Now().Add(30 * time.Second)
	for q.Stats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := q.Pending(t.Context()); err != nil || n != 5 || q.Stats().Failed == 0 {
		t.Fatalf("while down: pending %d (%v), stats %+v; want 5 pending and failed attempts", n, err, q.Stats())
	}

	stack.Restart()
	for i := range 5 {
		mp.await(fmt.Sprintf("%d.%s", i, to), 1)
	}
	drained(t, q)
	for i := range 5 { // still once each, with the outbox empty
		if n := len(mp.to(fmt.Sprintf("%d.%s", i, to))); n != 1 {
			t.Errorf("message %d arrived %d times", i, n)
		}
	}
	if st := q.Stats(); st.Sent != 5 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want 5 sent", st)
	}
}

// Two relays (two replicas) on one outbox deliver each message once.
func TestTwoRelaysDeliverOnce(t *testing.T) {
	smtpURL := sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL")
	mp := mailpit{t, sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")}
	open, _ := mongoOutbox(t)
	a := newQueue(t, open(), mail.Config{SMTPURL: smtpURL})
	b := newQueue(t, open(), mail.Config{SMTPURL: smtpURL})
	mail.StartRelay(t, a)
	mail.StartRelay(t, b)

	to := address("two")
	const n = 12
	for i := range n {
		m, _ := verify(fmt.Sprintf("%d.%s", i, to))
		if err := []*mail.Queue{a, b}[i%2].Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		mp.await(fmt.Sprintf("%d.%s", i, to), 1)
	}
	drained(t, a)
	for i := range n {
		if got := len(mp.to(fmt.Sprintf("%d.%s", i, to))); got != 1 {
			t.Errorf("message %d arrived %d times", i, got)
		}
	}
	if sent := a.Stats().Sent + b.Stats().Sent; sent != n {
		t.Errorf("the relays sent %d messages in all, want %d", sent, n)
	}
}

// A recipient the server refuses for good (550) is dropped, after a log
// line; the messages around it are delivered. A tiny SMTP proxy in front
// of Mailpit refuses the one address (Mailpit itself takes everything).
func TestRefusedRecipientDropped(t *testing.T) {
	smtpURL := sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL")
	mp := mailpit{t, sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")}
	u, err := url.Parse(smtpURL)
	if err != nil {
		t.Fatal(err)
	}
	bad := address("nobody")
	proxy := mail.StartLoopbackSMTP(t, u.Host, func(verb, arg string) string {
		if verb == "RCPT" && strings.Contains(arg, bad) {
			return "550 5.1.1 <" + bad + ">: no such user"
		}
		return ""
	})
	var logs mail.LogBuffer
	open, _ := mongoOutbox(t)
	q := newQueue(t, open(), mail.Config{SMTPURL: "smtp://" + proxy.Addr,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mail.StartRelay(t, q)

	before, after := address("before"), address("after")
	for _, to := range []string{before, bad, after} {
		m, _ := verify(to)
		if err := q.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	mp.await(before, 1)
	mp.await(after, 1)
	drained(t, q)
	if n := len(mp.to(bad)); n != 0 {
		t.Errorf("%d messages to the refused address", n)
	}
	if st := q.Stats(); st.Sent != 2 || st.Dropped != 1 {
		t.Errorf("Stats() = %+v, want 2 sent and 1 dropped", st)
	}
	if l := logs.String(); !strings.Contains(l, "refused for good") || !strings.Contains(l, "code=550") {
		t.Errorf("the drop is not logged:\n%s", l)
	}
}

// With an encryption key, the queued message (its link's token, its
// recipient, its subject) is not readable in MongoDB; the relay still
// sends it.
func TestEncryptedAtRest(t *testing.T) {
	smtpURL := sdktest.RequireEnv(t, "JOTGUARD_SMTP_URL")
	mp := mailpit{t, sdktest.RequireEnv(t, "JOTGUARD_MAILPIT_URL")}
	open, stored := mongoOutbox(t)
	key := bytes.Repeat([]byte{42}, 32)
	q := newQueue(t, open(), mail.Config{SMTPURL: smtpURL, EncryptionKey: key})

	to := address("sealed")
	m, link := verify(to)
	if err := q.Send(t.Context(), m); err != nil { // not relayed yet: Run is not started
		t.Fatal(err)
	}
	docs := stored()
	if len(docs) != 1 {
		t.Fatalf("%d documents in %s, want 1", len(docs), mail.OutboxCollection)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	for _, clear := range []string{token, to, "Confirm your email"} {
		if bytes.Contains(docs[0], []byte(clear)) {
			t.Errorf("the stored document shows %q in the clear:\n%s", clear, docs[0])
		}
	}

	// A replica without the key cannot read it: it keeps it, never drops it.
	keyless := newQueue(t, open(), mail.Config{SMTPURL: smtpURL})
	stopKeyless := mail.StartRelay(t, keyless)
	deadline := time.Now().Add(30 * time.Second)
	for keyless.Stats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := q.Pending(t.Context()); n != 1 || keyless.Stats().Dropped != 0 || keyless.Stats().Failed == 0 {
		t.Fatalf("keyless relay: pending %d, stats %+v; want the message kept", n, keyless.Stats())
	}

	stopKeyless() // gives up the lease
	mail.StartRelay(t, q)
	got := mp.message(mp.await(to, 1)[0].ID)
	if !strings.Contains(got.Text, link) {
		t.Errorf("text part lacks the link:\n%s", got.Text)
	}
}
