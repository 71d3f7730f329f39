package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

var issuerPprof = ""

const benchPassword = "bench-password-0123456789"

// IssuerClient calls bin/issuer's browser API.
type IssuerClient struct {
	Base string
	HTTP *http.Client
}

func (c *IssuerClient) post(ctx context.Context, path string, body any, hdr http.Header) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func want(resp *http.Response, body []byte, status int, what string) error {
	if resp.StatusCode != status {
		return fmt.Errorf("%s: status %d: %.200s", what, resp.StatusCode, body)
	}
	return nil
}

func (c *IssuerClient) Register(ctx context.Context, email string) error {
	resp, b, err := c.post(ctx, "/register", map[string]string{"email": email, "password": benchPassword}, nil)
	if err != nil {
		return err
	}
	return want(resp, b, http.StatusCreated, "register")
}

// Session is what a login or refresh returns.
type Session struct {
	Access  string
	Refresh string // the refresh_token cookie value
}

func session(resp *http.Response, b []byte) (Session, error) {
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.AccessToken == "" {
		return Session{}, fmt.Errorf("no access_token in %.200s", b)
	}
	s := Session{Access: body.AccessToken}
	for _, ck := range resp.Cookies() {
		if ck.Name == "refresh_token" {
			s.Refresh = ck.Value
		}
	}
	if s.Refresh == "" {
		return Session{}, fmt.Errorf("no refresh_token cookie")
	}
	return s, nil
}

func (c *IssuerClient) Login(ctx context.Context, email string) (Session, error) {
	resp, b, err := c.post(ctx, "/login", map[string]string{"email": email, "password": benchPassword}, nil)
	if err != nil {
		return Session{}, err
	}
	if err := want(resp, b, http.StatusOK, "login"); err != nil {
		return Session{}, err
	}
	return session(resp, b)
}

// Refresh presents the refresh cookie, as a browser does, and returns the
// rotated session.
func (c *IssuerClient) Refresh(ctx context.Context, refresh string) (Session, error) {
	resp, b, err := c.post(ctx, "/access_token", nil, http.Header{"Cookie": {"refresh_token=" + refresh}})
	if err != nil {
		return Session{}, err
	}
	if err := want(resp, b, http.StatusOK, "access_token"); err != nil {
		return Session{}, err
	}
	return session(resp, b)
}

func (c *IssuerClient) Logout(ctx context.Context, access string) error {
	resp, b, err := c.post(ctx, "/logout", nil, http.Header{"Authorization": {"Bearer " + access}})
	if err != nil {
		return err
	}
	return want(resp, b, http.StatusNoContent, "logout")
}

// runTag keeps emails unique across runs against one database.
var runTag = strings.ToLower(rand.Text()[:6])

func email(run, i int) string { return fmt.Sprintf("u%d-%d-%s@bench.example", run, i, runTag) }

// IssuerResults are the figures of scenarios 1–3 for one run.
type IssuerResults struct {
	Register, RegisterLogin, Refresh, Login Result
	RefreshEmails                           []string // the users of the /access_token workload
}

// authixWorkloads runs the three Authix workloads and a login-only pass
// against the issuer at concurrency conc. n is 1000 in full mode.
// watch, when not nil, records each workload's CPU time per process.
func authixWorkloads(ctx context.Context, c *IssuerClient, watch CPUWatch, run, conc, n, refreshUsers int) (IssuerResults, error) {
	var out IssuerResults
	load := func(ctx context.Context, name string, conc, n int, d time.Duration, warm int, op Op) Result {
		before := watch.Snapshot()
		r := Load(ctx, name, conc, n, d, warm, op)
		if watch != nil {
			r.CPU = watch.Since(before)
		}
		return r
	}
	// 1. n × /register
	registered := make([]bool, n)
	out.Register = load(ctx, "register", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		err := c.Register(ctx, email(run, i))
		registered[i] = err == nil
		return err
	})
	var ok []int
	for i, r := range registered {
		if r {
			ok = append(ok, i)
		}
	}
	if len(ok) < refreshUsers {
		return out, fmt.Errorf("only %d of %d registrations succeeded", len(ok), n)
	}
	// /login alone, n times over the users just registered (for scenario 3;
	// a registration refused with 503 is not logged in: its error counts once)
	out.Login = load(ctx, "login", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		_, err := c.Login(ctx, email(run, ok[i%len(ok)]))
		return err
	})
	// 2. n × (/register then /login)
	out.RegisterLogin = load(ctx, "register+login", conc, n, 0, 0, func(ctx context.Context, w, i int) error {
		e := email(run, n+i)
		if err := c.Register(ctx, e); err != nil {
			return err
		}
		_, err := c.Login(ctx, e)
		return err
	})
	// 3. refreshUsers users × n /access_token: conc sessions (worker w is a
	// session of user w % refreshUsers), each following its rotated cookie.
	for _, x := range []Result{out.Register, out.Login, out.RegisterLogin} {
		if x.Errors > 0 {
			logf("  %s: %d errors, first: %s", x.Name, x.Errors, x.FirstErr)
		}
	}
	for u := range refreshUsers {
		out.RefreshEmails = append(out.RefreshEmails, email(run, ok[u]))
	}
	sess := make([]Session, conc)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			s, err := c.Login(ctx, email(run, ok[w%refreshUsers]))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			sess[w] = s
		})
	}
	wg.Wait()
	if firstErr != nil {
		return out, fmt.Errorf("refresh setup: %w", firstErr)
	}
	rf, err := newRefresher(c.Base, conc)
	if err != nil {
		return out, err
	}
	defer rf.Close()
	out.Refresh = load(ctx, "access_token", conc, refreshUsers*n, 0, 0, func(ctx context.Context, w, i int) error {
		s, err := rf.Refresh(ctx, w, sess[w].Refresh)
		if err != nil {
			return err
		}
		sess[w] = s
		return nil
	})
	return out, nil
}

// startIssuer runs bin/issuer against the dev stack.
func startIssuer(ctx context.Context, ds *Devstack, cpus, db string) (*Proc, *IssuerClient, error) {
	addr := freeAddr()
	p, err := start("issuer", cpus, envList(ds.Env,
		"JOTGUARD_ISSUER_ADDR="+addr,
		"JOTGUARD_ISSUER=http://"+addr,
		"JOTGUARD_MONGO_DB="+db,
		"JOTGUARD_REDIS_PREFIX="+db,
		"JOTGUARD_COOKIE_SECURE=false",
		"JOTGUARD_RATE_LIMITS=off",
		"JOTGUARD_LOG_LEVEL=warn",
		"JOTGUARD_ACCESS_TTL="+accessTTL,
		"BENCH_PPROF_ADDR="+issuerPprof,
	), cmp.Or(issuerBin, binDir+"/issuer"))
	if err != nil {
		return nil, nil, err
	}
	p.Addr = addr
	if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		return nil, nil, err
	}
	return p, &IssuerClient{Base: "http://" + addr, HTTP: NewClient(128)}, nil
}
