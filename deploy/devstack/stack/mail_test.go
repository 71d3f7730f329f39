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

// TestInboxPage: JOTGUARD_MAILPIT_URL's / is a server-rendered inbox that
// lists a sent message (time, recipient, subject) with links to Mailpit's
// HTML and text views, which work through the proxy, as does the API; its
// "delete all" button empties the inbox. Only loopback Host values and
// same-origin posts are served.
func TestInboxPage(t *testing.T) {
	s, err := Start(t.Context(), Options{Services: []string{Mail}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := url.Parse(s.SMTPURL)
	if err != nil {
		t.Fatal(err)
	}
	api := mailpitAPI{t: t, base: s.MailpitURL}
	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.MailpitURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.String()
	}

	resp, body := get("/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "No mail yet") || !strings.Contains(body, s.SMTPURL) {
		t.Fatalf("GET / on an empty inbox: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}

	subject := fmt.Sprintf("Confirm <your> address %d", time.Now().UnixNano())
	msg := "From: jotguard <no-reply@localhost>\r\nTo: ada@example.com\r\nSubject: " + subject + "\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOpen http://127.0.0.1:8080/account/verify-email?token=t1\r\n" +
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p><a href=\"http://127.0.0.1:8080/account/verify-email?token=t1\">Confirm</a></p>\r\n" +
		"--b1--\r\n"
	if err := smtp.SendMail(u.Host, nil, "no-reply@localhost", []string{"ada@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	id := api.search("to:ada@example.com", 1)[0].ID // the API, through the proxy

	_, body = get("/")
	escaped := strings.ReplaceAll(strings.ReplaceAll(subject, "<", "&lt;"), ">", "&gt;")
	for _, want := range []string{escaped, "ada@example.com", `href="/view/` + id + `.html"`, `href="/view/` + id + `.txt"`,
		`<form method="post" action="/">`, "Delete all", time.Now().Format("2006-01-02")} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the inbox page has a script")
	}
	if resp, body := get("/view/" + id + ".html"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "verify-email?token=t1") {
		t.Errorf("GET /view/%s.html: %s\n%s", id, resp.Status, body)
	}
	if resp, body := get("/view/" + id + ".txt"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Open http://127.0.0.1:8080/account/verify-email?token=t1") {
		t.Errorf("GET /view/%s.txt: %s\n%s", id, resp.Status, body)
	}

	// DNS rebinding: a page reached by name is not served, by us nor by Mailpit.
	for _, path := range []string{"/", "/api/v1/messages"} {
		if resp, _ := get(path, "Host", "evil.example:80"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s with Host evil.example: %s, want 403", path, resp.Status)
		}
	}
	post := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.MailpitURL+"/", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site delete: %s, want 403", resp.Status)
	}
	api.search("to:ada@example.com", 1) // still there
	if resp := post(s.MailpitURL); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("delete all: %s to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	var l mailpitList
	api.do(http.MethodGet, "/api/v1/messages", &l)
	if l.Total != 0 {
		t.Errorf("after delete all: %d messages", l.Total)
	}
	if _, body := get("/"); !strings.Contains(body, "No mail yet") {
		t.Errorf("GET / after delete all:\n%s", body)
	}
}
