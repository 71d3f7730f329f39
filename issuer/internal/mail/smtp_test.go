package mail

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSMTPURL(t *testing.T) {
	for _, ok := range []string{
		"smtp://127.0.0.1:1025", "smtp://mail.example.com", "smtps://mail.example.com",
		"smtps://user%40example.com:p%40ss@mail.example.com:465", "smtp://[::1]:25/",
	} {
		if _, err := NewSMTP(ok, DefaultFrom, time.Second); err != nil {
			t.Errorf("NewSMTP(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"http://mail.example.com", "mail.example.com:25", "smtp://", "smtp://:25",
		"smtp://user:s3cret@mail.example.com:99999", "smtp://user:s3cret@mail.example.com/inbox",
		"smtp://user:s3cret@mail.example.com?tls=skip", "smtp://user:s3cret@mail.example.com:x",
		"smtp://us er:s3cret@bad host",
	} {
		_, err := NewSMTP(bad, DefaultFrom, time.Second)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("NewSMTP(%q): %v, want ErrConfig", bad, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewSMTP(%q): the error shows the password: %v", bad, err)
		}
	}
	if _, err := NewSMTP("smtp://127.0.0.1:25", "not an address", time.Second); !errors.Is(err, ErrConfig) {
		t.Errorf("bad From: %v, want ErrConfig", err)
	}
	s, err := NewSMTP("smtps://bob:s3cret@mail.example.com", "Acme <no-reply@acme.example>", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.String(), "s3cret") || s.domain != "acme.example" {
		t.Errorf("String() = %q, domain %q", s.String(), s.domain)
	}
}

// classify reads go-mail's answers from a real SMTP conversation: only a
// 5xx to the recipient or the content refuses a message for good; a 4xx
// and a broken transfer defer it; a failure of the sender or of the
// connection is an outage for every message.
func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		reply func(verb, arg string) string
		want  outcome
		code  int
		reuse bool
	}{
		{name: "accepted", want: delivered, reuse: true},
		{name: "recipient unknown", want: refused, code: 550, reuse: true,
			reply: on("RCPT", "550 5.1.1 no such user")},
		{name: "recipient greylisted", want: deferred, code: 451, reuse: true,
			reply: on("RCPT", "451 4.7.1 try again later")},
		{name: "content refused", want: refused, code: 554, reuse: true,
			reply: on("DATA-END", "554 5.7.1 rejected as spam")},
		{name: "content deferred", want: deferred, code: 452, reuse: true,
			reply: on("DATA-END", "452 4.3.1 insufficient storage")},
		{name: "dropped after the content", want: deferred,
			reply: on("DATA-END", "CLOSE")},
		{name: "sender refused", want: outage, code: 553,
			reply: on("MAIL", "553 5.7.1 sender not allowed")},
		{name: "server busy", want: outage, code: 421,
			reply: on("MAIL", "421 4.3.2 shutting down")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := StartLoopbackSMTP(t, "", tt.reply)
			res := connect(t, srv, DefaultFrom).send(t.Context(), queued{To: "ada@example.com", Subject: "s", Text: "t", HTML: "<p>h</p>",
				MessageID: "m@localhost", Date: time.Now()})
			if res.outcome != tt.want || res.code != tt.code || res.reuse != tt.reuse {
				t.Fatalf("outcome %v, code %d, reuse %v (err %v); want %v, %d, %v",
					res.outcome, res.code, res.reuse, res.err, tt.want, tt.code, tt.reuse)
			}
			if got := len(srv.Received()); (tt.want == delivered) != (got == 1) {
				t.Fatalf("the server kept %d messages", got)
			}
		})
	}

	// Nobody listens: dial fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := NewSMTP("smtp://"+addr, DefaultFrom, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.dial(t.Context()); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

// connect opens a connection to srv, closed at the end of the test.
func connect(t *testing.T, srv *LoopbackSMTP, from string) *conn {
	t.Helper()
	s, err := NewSMTP("smtp://"+srv.Addr, from, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// on answers reply to the command verb and lets every other command pass.
func on(verb, reply string) func(string, string) string {
	return func(v, _ string) string {
		if v == verb {
			return reply
		}
		return ""
	}
}

// The message is multipart/alternative (text, then HTML), from
// JOTGUARD_MAIL_FROM, with a stable Message-ID and no User-Agent of the
// library.
func TestMessageShape(t *testing.T) {
	srv := StartLoopbackSMTP(t, "", nil)
	if res := connect(t, srv, "Acme <no-reply@acme.example>").send(t.Context(), queued{To: "ada@example.com", Subject: "Hello", Text: "plain " + testLink,
		HTML: "<p>html</p>", MessageID: "abc@acme.example", Date: time.Now()}); res.outcome != delivered {
		t.Fatalf("send: %v %v", res.outcome, res.err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("received %d messages", len(got))
	}
	d := got[0].Data
	for _, want := range []string{"From: \"Acme\" <no-reply@acme.example>", "To: <ada@example.com>", "Subject: Hello",
		"Message-ID: <abc@acme.example>", "Auto-Submitted: auto-generated", "multipart/alternative",
		"Content-Type: text/plain", "Content-Type: text/html"} {
		if !strings.Contains(d, want) {
			t.Errorf("message lacks %q:\n%s", want, d)
		}
	}
	if strings.Index(d, "text/plain") > strings.Index(d, "text/html") {
		t.Error("the HTML part comes before the text part")
	}
	if strings.Contains(d, "go-mail") {
		t.Errorf("the message names the library:\n%s", d)
	}
	if got[0].From != "<no-reply@acme.example>" && !strings.Contains(got[0].From, "no-reply@acme.example") {
		t.Errorf("MAIL FROM %q", got[0].From)
	}
}
