package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The OIDC service is an OpenID provider for signing in to jotguard with an
// external account: Ory Hydra (a child process, in-memory database) and
// the sign-in and consent app Hydra needs, served here. A person (or a
// test's HTTP client, or a browser) signs in on its page as anyone:
// subject, email address, whether the provider says the address is
// verified, and a name; consent is given at once. Relying parties are
// Hydra clients, created through its admin API (POST
// HydraAdminURL/admin/clients).

func (s *Stack) startOIDC(ctx context.Context, opts Options) error {
	bin, err := hydraBin(opts.HydraBin)
	if err != nil {
		return err
	}
	dir := filepath.Join(opts.DataDir, "oidc")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	public, admin := hostPort(ports[0]), hostPort(ports[1])
	adminURL := "http://" + admin

	// The sign-in app first: Hydra's configuration names its pages.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	app := &loginApp{admin: adminURL, client: &http.Client{Timeout: 10 * time.Second}}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.onClose(func() { _ = srv.Close() })
	appURL := "http://" + ln.Addr().String()

	logFile, err := os.Create(filepath.Join(dir, "hydra.log"))
	if err != nil {
		return err
	}
	s.onClose(func() { _ = logFile.Close() })
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out") // --dev: plain HTTP on loopback
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"DSN=memory",
		"SECRETS_SYSTEM=" + rand.Text(),
		"URLS_SELF_ISSUER=http://" + public + "/",
		"URLS_LOGIN=" + appURL + "/login",
		"URLS_CONSENT=" + appURL + "/consent",
		"URLS_ERROR=" + appURL + "/error",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT=" + strconv.Itoa(ports[0]),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT=" + strconv.Itoa(ports[1]),
		"SQA_OPT_OUT=true", // no telemetry: traffic stays on loopback
		"LOG_LEVEL=warn",
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := startChild(cmd)
	if err != nil {
		return err
	}
	s.onClose(p.stop)
	if err := waitHTTP(ctx, adminURL+"/health/ready", p.exited); err != nil {
		return fmt.Errorf("hydra (log %s): %w", logFile.Name(), err)
	}
	s.HydraURL, s.HydraAdminURL = "http://"+public+"/", adminURL
	opts.Logger.Info("openid provider: Ory Hydra", "issuer", s.HydraURL, "admin", adminURL, "sign_in_app", appURL,
		"bin", bin, "pid", p.cmd.Process.Pid, "log", logFile.Name())
	return nil
}

// hydraBin finds the Hydra binary: bin if set, else beside the running
// executable, else on PATH.
func hydraBin(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "hydra"); isFile(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("hydra"); err == nil {
		return p, nil
	}
	return "", errors.New("the hydra binary is neither beside devstack nor on PATH: `make build` writes bin/hydra (or leave oidc out of --only)")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// waitHTTP GETs u until it answers 200, ctx ends or dead is closed.
func waitHTTP(ctx context.Context, u string, dead <-chan struct{}) error {
	c := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", u, resp.Status)
		}
		last = err
		select {
		case <-dead:
			return fmt.Errorf("exited while starting: %w", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loginApp is Hydra's sign-in and consent app: what an identity
// provider's own pages would be, reduced to a form that signs in as
// anyone.
type loginApp struct {
	admin  string
	client *http.Client
}

func (a *loginApp) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /login", a.loginPage)
	m.HandleFunc("POST /login", a.login)
	m.HandleFunc("GET /consent", a.consent)
	m.HandleFunc("GET /error", a.errorPage)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No form-action: browsers apply it to the redirects after the
		// sign-in form, which go on to Hydra and to the relying party.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		m.ServeHTTP(w, r)
	})
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dev OpenID provider: sign in</title></head>
<body><h1>Dev OpenID provider</h1>
<p>Signing in to {{.Client}}. Sign in as anyone: this provider believes what you type.</p>
<form method="post" action="/login">
<input type="hidden" name="challenge" value="{{.Challenge}}">
<p><label>Email <input name="email" type="email" required autofocus></label></p>
<p><label><input name="email_verified" type="checkbox" value="true" checked> The provider has verified this address</label></p>
<p><label>Subject (the account's id here; empty: the email address) <input name="subject"></label></p>
<p><label>Given name <input name="given_name"></label> <label>Family name <input name="family_name"></label></p>
<p><button type="submit" name="action" value="accept">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Cancel</button></p>
</form></body></html>
`))

func (a *loginApp) loginPage(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("login_challenge")
	var req struct {
		Client struct {
			ID string `json:"client_id"`
		} `json:"client"`
	}
	if err := a.call(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(ch), nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTmpl.Execute(w, map[string]string{"Challenge": ch, "Client": req.Client.ID})
}

// claims are what the person typed: the ID token's claims.
type claims struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
}

func (a *loginApp) login(w http.ResponseWriter, r *http.Request) {
	ch := r.PostFormValue("challenge")
	q := "?login_challenge=" + url.QueryEscape(ch)
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	var err error
	if r.PostFormValue("action") == "deny" {
		err = a.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/reject"+q,
			map[string]string{"error": "access_denied", "error_description": "The person cancelled the sign-in."}, &out)
	} else {
		c := claims{Email: strings.TrimSpace(r.PostFormValue("email")), EmailVerified: r.PostFormValue("email_verified") == "true",
			GivenName: r.PostFormValue("given_name"), FamilyName: r.PostFormValue("family_name")}
		sub := strings.TrimSpace(r.PostFormValue("subject"))
		if sub == "" {
			sub = strings.ToLower(c.Email)
		}
		if sub == "" {
			http.Error(w, "an email address or a subject is required", http.StatusBadRequest)
			return
		}
		// The claims ride in the login's context to the consent.
		err = a.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/accept"+q,
			map[string]any{"subject": sub, "context": c}, &out)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusSeeOther)
}

// consent grants what the client asked for, with the claims typed at
// sign-in in the ID token.
func (a *loginApp) consent(w http.ResponseWriter, r *http.Request) {
	q := "?consent_challenge=" + url.QueryEscape(r.URL.Query().Get("consent_challenge"))
	var req struct {
		Scope    []string `json:"requested_scope"`
		Audience []string `json:"requested_access_token_audience"`
		Context  claims   `json:"context"`
	}
	if err := a.call(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/consent"+q, nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.call(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/consent/accept"+q, map[string]any{
		"grant_scope": req.Scope, "grant_access_token_audience": req.Audience,
		"session": map[string]any{"id_token": req.Context},
	}, &out); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusSeeOther)
}

func (a *loginApp) errorPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "The provider refused the request: %s: %s\n", r.URL.Query().Get("error"), r.URL.Query().Get("error_description"))
}

// call sends a JSON request to Hydra's admin API and decodes the answer.
func (a *loginApp) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.admin+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("hydra admin API: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra admin API %s %s: %s: %s", method, path, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}
