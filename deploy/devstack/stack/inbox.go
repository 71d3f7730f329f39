package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Mailpit's Go module lacks its compiled web interface: its page at / is
// blank. So the stack serves JOTGUARD_MAILPIT_URL itself: a small reverse
// proxy whose / is a server-rendered inbox (the latest messages, each
// linked to Mailpit's own /view/{ID}.html and .txt, and a button that
// deletes them all), and which passes every other path (/api/…, /view/…,
// /readyz) to Mailpit on an internal loopback port, with the Host header
// as sent, so that Mailpit's Host and Origin checks still apply.

// inboxLimit is how many messages the inbox page lists.
const inboxLimit = 50

// inbox serves the mail catcher's public HTTP port.
type inbox struct {
	mailpit  *url.URL // Mailpit's internal HTTP address
	smtpURL  string   // shown on the page
	version  string   // Mailpit's
	proxy    *httputil.ReverseProxy
	client   *http.Client
	log      *slog.Logger
	template *template.Template
}

func newInbox(mailpit *url.URL, smtpURL, version string, log *slog.Logger) *inbox {
	in := &inbox{mailpit: mailpit, smtpURL: smtpURL, version: version, log: log,
		client: &http.Client{Timeout: 10 * time.Second}, template: inboxPage}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(mailpit)
			r.Out.Host = r.In.Host // Mailpit checks it (DNS rebinding) and compares it with Origin
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return in
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		in.proxy.ServeHTTP(w, r)
		return
	}
	if !loopbackHost(r.Host) {
		http.Error(w, "forbidden Host: open the inbox at its 127.0.0.1 address", http.StatusForbidden)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		in.page(w, r)
	case http.MethodPost: // the "delete all" button
		if o := r.Header.Get("Origin"); o != "" && o != "null" && o != "http://"+r.Host {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if err := in.deleteAll(r.Context()); err != nil {
			in.log.Warn("inbox: delete all", "err", err)
			http.Error(w, "Mailpit: "+err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// loopbackHost admits the Host values a page on loopback is reached by:
// localhost and IP literals (a DNS rebinding attack sends a name).
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	return strings.EqualFold(h, "localhost") || net.ParseIP(h) != nil
}

// inboxMessage holds the members of Mailpit's message summaries the page
// shows.
type inboxMessage struct {
	ID      string
	Created time.Time
	From    struct{ Name, Address string }
	To      []struct{ Name, Address string }
	Subject string
	Snippet string
}

type inboxView struct {
	Messages []inboxMessage
	Total    int
	Err      string
	SMTPURL  string
	Version  string
}

func (in *inbox) page(w http.ResponseWriter, r *http.Request) {
	v := inboxView{SMTPURL: in.smtpURL, Version: in.version}
	var list struct {
		Total    int `json:"messages_count"`
		Messages []inboxMessage
	}
	if err := in.call(r.Context(), http.MethodGet, fmt.Sprintf("/api/v1/messages?limit=%d", inboxLimit), &list); err != nil {
		v.Err = err.Error()
	}
	v.Messages, v.Total = list.Messages, list.Total
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := in.template.Execute(w, v); err != nil {
		in.log.Warn("inbox: render", "err", err)
	}
}

func (in *inbox) deleteAll(ctx context.Context) error {
	return in.call(ctx, http.MethodDelete, "/api/v1/messages", nil)
}

// call sends a request to Mailpit's API and decodes its JSON answer into
// out, if not nil.
func (in *inbox) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, in.mailpit.String()+path, nil)
	if err != nil {
		return err
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// serveInbox listens on addr and serves the inbox until the stack closes.
func (s *Stack) serveInbox(addr string, in *inbox) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(in.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.log.Error("inbox: serve", "err", err)
		}
	}()
	s.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	})
	return nil
}

var inboxPage = template.Must(template.New("inbox").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>Inbox ({{len .Messages}}) · jotguard dev stack</title>
<style>
body{margin:0;font:15px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#18181b;background:#f4f4f5}
header{background:#18181b;color:#fafafa;padding:14px 24px;display:flex;align-items:center;gap:16px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
header .sub{color:#a1a1aa;font-size:13px}
header form{margin-left:auto}
main{max-width:1100px;margin:20px auto;padding:0 16px}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e4e7;border-radius:6px;overflow:hidden}
th,td{text-align:left;padding:9px 12px;border-bottom:1px solid #e4e4e7;vertical-align:top}
th{background:#fafafa;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#52525b}
td.when{white-space:nowrap;color:#52525b;font-variant-numeric:tabular-nums}
td.subject a{color:#1d4ed8;text-decoration:none;font-weight:600}
td.subject .snippet{color:#71717a;font-size:13px;margin-top:2px;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
td.views{white-space:nowrap}
td.views a{color:#1d4ed8;margin-right:10px}
button{background:#dc2626;color:#fff;border:0;border-radius:4px;padding:7px 14px;font:inherit;cursor:pointer}
a.refresh{color:#fafafa}
.empty,.error{background:#fff;border:1px solid #e4e4e7;border-radius:6px;padding:28px;text-align:center;color:#52525b}
.error{border-color:#fca5a5;color:#991b1b}
footer{max-width:1100px;margin:0 auto 24px;padding:0 16px;color:#71717a;font-size:13px}
code{font-size:12.5px}
</style>
</head>
<body>
<header>
<h1>jotguard dev inbox</h1>
<span class="sub">{{if .Total}}{{.Total}} message{{if ne .Total 1}}s{{end}}{{if gt .Total (len .Messages)}}, the latest {{len .Messages}} shown{{end}}{{else}}empty{{end}} · <a class="refresh" href="/">refresh</a> (every 10 s by itself)</span>
<form method="post" action="/"><button type="submit"{{if not .Messages}} disabled{{end}}>Delete all</button></form>
</header>
<main>
{{- if .Err}}
<p class="error">Mailpit did not answer: {{.Err}}</p>
{{- else if not .Messages}}
<p class="empty">No mail yet. Mail sent to <code>{{.SMTPURL}}</code> shows up here.</p>
{{- else}}
<table>
<thead><tr><th>Received</th><th>To</th><th>Subject</th><th>View</th></tr></thead>
<tbody>
{{- range .Messages}}
<tr>
<td class="when">{{when .Created}}</td>
<td>{{range $i, $a := .To}}{{if $i}}, {{end}}{{$a.Address}}{{end}}</td>
<td class="subject"><a href="/view/{{.ID}}.html">{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</a><div class="snippet">{{.Snippet}}</div></td>
<td class="views"><a href="/view/{{.ID}}.html">HTML</a><a href="/view/{{.ID}}.txt">text</a></td>
</tr>
{{- end}}
</tbody>
</table>
{{- end}}
</main>
<footer>SMTP: <code>{{.SMTPURL}}</code> (plain, no auth) · Mailpit {{.Version}} API: <code>/api/v1/messages</code>, <code>/api/v1/message/{ID}</code>, <code>/api/v1/search?query=</code>, <code>/view/{ID}.html</code></footer>
</body>
</html>
`))
