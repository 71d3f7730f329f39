package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"
)

// mailpitMessage holds the members of Mailpit's /api/v1/message/{ID} that
// the tests read.
type mailpitMessage struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
	HTML    string
}

// mailpitList is Mailpit's answer to /api/v1/messages and /api/v1/search.
type mailpitList struct {
	Total    int `json:"total"`
	Messages []mailpitMessage
}

type mailpitAPI struct {
	t    *testing.T
	base string // JOTGUARD_MAILPIT_URL
}

// do sends a request to the API and decodes a JSON answer into out (if
// not nil); any status but 200 fails the test.
func (a mailpitAPI) do(method, path string, out any) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.base+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			a.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// search returns the messages matching query, waiting (within a bound
// that only a hang exceeds) until there are want of them.
func (a mailpitAPI) search(query string, want int) []mailpitMessage {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l mailpitList
		a.do(http.MethodGet, "/api/v1/search?query="+url.QueryEscape(query), &l)
		if len(l.Messages) == want || time.Now().After(deadline) {
			if len(l.Messages) != want {
				a.t.Fatalf("search %q: %d messages, want %d", query, len(l.Messages), want)
			}
			return l.Messages
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// message reads one message in full.
func (a mailpitAPI) message(id string) mailpitMessage {
	a.t.Helper()
	var m mailpitMessage
	a.do(http.MethodGet, "/api/v1/message/"+url.PathEscape(id), &m)
	return m
}

// TestMailSendReadDelete: mail sent with net/smtp to JOTGUARD_SMTP_URL, over
// plain SMTP without STARTTLS or AUTH, is read back through Mailpit's API
// at JOTGUARD_MAILPIT_URL (subject, recipient, text, and the HTML of a
// multipart message), and deleting all leaves no message. Close stops
// Mailpit and frees both ports.
func TestMailSendReadDelete(t *testing.T) {
	s, err := Start(t.Context(), Options{Services: []string{Mail}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := s.Env()
	if len(env) != 2 || !strings.HasPrefix(env[0], "JOTGUARD_SMTP_URL=smtp://127.0.0.1:") ||
		!strings.HasPrefix(env[1], "JOTGUARD_MAILPIT_URL=http://127.0.0.1:") {
		t.Fatalf("Env() = %v, want JOTGUARD_SMTP_URL=smtp://127.0.0.1:… and JOTGUARD_MAILPIT_URL=http://127.0.0.1:…", env)
	}
	u, err := url.Parse(s.SMTPURL)
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := u.Host
	api := mailpitAPI{t: t, base: s.MailpitURL}

	c, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"STARTTLS", "AUTH"} {
		if ok, _ := c.Extension(ext); ok {
			t.Errorf("the SMTP server offers %s; the dev stack promises plain SMTP without it", ext)
		}
	}
	_ = c.Quit()

	run := fmt.Sprint(time.Now().UnixNano())
	plain := "From: jotguard <no-reply@localhost>\r\nTo: ada@example.com\r\n" +
		"Subject: Verify your email " + run + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Open http://127.0.0.1:8080/account/verify-email?token=t1\r\n"
	multi := "From: jotguard <no-reply@localhost>\r\nTo: bob@example.com\r\n" +
		"Subject: Reset your password " + run + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Reset: http://127.0.0.1:8080/account/reset-password?token=t2\r\n" +
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		`<p><a href="http://127.0.0.1:8080/account/reset-password?token=t2">Reset</a></p>` + "\r\n" +
		"--b1--\r\n"
	for to, msg := range map[string]string{"ada@example.com": plain, "bob@example.com": multi} {
		if err := smtp.SendMail(smtpAddr, nil, "no-reply@localhost", []string{to}, []byte(msg)); err != nil {
			t.Fatalf("send to %s: %v", to, err)
		}
	}

	got := api.message(api.search(`subject:"Verify your email `+run+`"`, 1)[0].ID)
	if got.Subject != "Verify your email "+run || len(got.To) != 1 || got.To[0].Address != "ada@example.com" ||
		got.From.Address != "no-reply@localhost" {
		t.Errorf("plain message: subject %q, from %q, to %v", got.Subject, got.From.Address, got.To)
	}
	if !strings.Contains(got.Text, "verify-email?token=t1") || got.HTML != "" {
		t.Errorf("plain message: Text %q, HTML %q; want the link in Text and no HTML", got.Text, got.HTML)
	}

	got = api.message(api.search(`to:bob@example.com`, 1)[0].ID)
	if got.Subject != "Reset your password "+run || len(got.To) != 1 || got.To[0].Address != "bob@example.com" {
		t.Errorf("multipart message: subject %q, to %v", got.Subject, got.To)
	}
	if !strings.Contains(got.Text, "Reset: http://127.0.0.1:8080/account/reset-password?token=t2") {
		t.Errorf("multipart message: Text %q, want its text part", got.Text)
	}
	if !strings.Contains(got.HTML, `<a href="http://127.0.0.1:8080/account/reset-password?token=t2">Reset</a>`) {
		t.Errorf("multipart message: HTML %q, want its HTML part", got.HTML)
	}

	api.do(http.MethodDelete, "/api/v1/messages", nil)
	var l mailpitList
	api.do(http.MethodGet, "/api/v1/messages", &l)
	if l.Total != 0 || len(l.Messages) != 0 {
		t.Errorf("after DELETE /api/v1/messages: total %d, %d messages; want none", l.Total, len(l.Messages))
	}

	s.Close()
	for _, addr := range []string{smtpAddr, strings.TrimPrefix(s.MailpitURL, "http://")} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
	}
}

// TestMailpitLogLines: Mailpit's log lines keep their level and message;
// other output (a panic, a flag error) keeps the writer's level.
func TestMailpitLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	w := &lineLog{log: log, level: slog.LevelError}
	for _, chunk := range []string{
		`time="2026/01/02 15:04:05" level=warning msg="[smtpd] rejected \"x\""` + "\n" + `time="2026/01/02 15:04:05" le`,
		`vel=info msg="[http] starting on 127.0.0.1:1"` + "\n\n",
		"Error: unknown flag: --nope\r\n",
	} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	want := `level=WARN msg="[smtpd] rejected \"x\""` + "\n" +
		`level=INFO msg="[http] starting on 127.0.0.1:1"` + "\n" +
		`level=ERROR msg="Error: unknown flag: --nope"` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("logged:\n%s\nwant:\n%s", got, want)
	}
}
