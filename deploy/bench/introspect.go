package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// Introspection is scenario 9: RFC 7662 token introspection answered by
// the verifier (/authz/introspect, from its local keys and revocation set)
// and by the issuer (/oauth/introspect, from its stores), in the same run,
// by the same client at the same concurrency, about the same live token.
type Introspection struct {
	Conc     int
	D        time.Duration // one run of one endpoint
	Verifier []Result      // per run
	Issuer   []Result
}

// introspectionScenario is 9, on an issuer and a verifier of its own.
func (b *bench) introspectionScenario(ctx context.Context, st *stack) {
	b.log.Printf("introspection: verifier vs issuer, c=%d, %s each, %d runs", issuerConc, b.plan.d, b.cfg.Runs)
	in, err := measureIntrospection(ctx, b.log, b.servers, st.ds, b.tag, b.cfg.ServerCPUs, issuerConc, b.plan.d, b.cfg.Runs)
	if err != nil {
		b.note("introspection: %v", err)
		return
	}
	b.rep.Intro = in
}

// measureIntrospection starts an issuer on a database of its own, creates
// a service account with `issuer clients create`, starts a verifier (pinned
// to cpus) and loads both introspection endpoints, runs times, alternating
// which goes first. The issuer's rate limits are off (the bench's issuer
// setting).
func measureIntrospection(ctx context.Context, log *logger, servers *Servers, ds *Devstack, tag, cpus string,
	conc int, d time.Duration, runs int) (*Introspection, error) {
	db := "bench" + tag + "intro"
	iss, ic, err := servers.Issuer(ctx, ds, "", db, tag)
	if err != nil {
		return nil, err
	}
	defer iss.Stop()
	id, secret, err := createServiceAccount(ctx, servers.issuerBin, envList(ds.Env, "JOTGUARD_MONGO_DB="+db,
		"JOTGUARD_REDIS_PREFIX="+db, "JOTGUARD_ISSUER="+ic.Base, "JOTGUARD_LOG_LEVEL=warn"))
	if err != nil {
		return nil, err
	}
	gateway, err := clientToken(ctx, ic, id, secret)
	if err != nil {
		return nil, err
	}
	email := ic.Email(900, 0)
	if err := ic.Register(ctx, email); err != nil {
		return nil, err
	}
	user, err := ic.Login(ctx, email)
	if err != nil {
		return nil, err
	}
	v, err := servers.Verifier(ctx, "verifier-introspect", cpus, ds.Env, ic.Base, "")
	if err != nil {
		return nil, err
	}
	defer v.Stop()
	hc := NewClient(conc)
	body := url.Values{"token": {user.Access}}.Encode()
	targets := []struct {
		name, url, auth string
		out             *[]Result
	}{
		{"verifier /authz/introspect", "http://" + v.Addr + "/authz/introspect", "Bearer " + gateway, nil},
		{"issuer /oauth/introspect", ic.Base + "/oauth/introspect",
			"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))), nil},
	}
	in := &Introspection{Conc: conc, D: d}
	targets[0].out, targets[1].out = &in.Verifier, &in.Issuer
	for run := range runs {
		for k := range targets {
			t := targets[(k+run)%len(targets)]
			r := Load(ctx, t.name, conc, 0, d, 20, introspectOp(hc, t.url, t.auth, body))
			*t.out = append(*t.out, r)
			log.Printf("  run %d %-28s c=%-3d %9.0f req/s p50 %-9s p99 %-9s errors %d %s", run+1, t.name, conc, r.RPS(),
				r.Q(0.5).Round(time.Microsecond), r.Q(0.99).Round(time.Microsecond), r.Errors, r.FirstErr)
		}
	}
	return in, nil
}

// introspectOp asks url about the token of body with the caller's
// Authorization; the answer must say active.
func introspectOp(hc *http.Client, url, authorization, body string) Op {
	active := []byte(`"active":true`)
	return func(ctx context.Context, _, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", authorization)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK || !bytes.Contains(b, active):
			return fmt.Errorf("status %d: %.100s", resp.StatusCode, b)
		}
		return nil
	}
}

// createServiceAccount runs `issuer clients create` with env and returns
// the client id and secret it printed.
func createServiceAccount(ctx context.Context, issuerBin string, env []string) (string, string, error) {
	cmd := exec.CommandContext(ctx, issuerBin, "clients", "create", "--name", "bench gateway")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("issuer clients create: %w: %s", err, stderr.Bytes())
	}
	v, err := url.ParseQuery(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "&"))
	if err != nil || v.Get("client_id") == "" || v.Get("client_secret") == "" {
		return "", "", fmt.Errorf("issuer clients create printed %q", out)
	}
	return v.Get("client_id"), v.Get("client_secret"), nil
}

// clientToken is the client credentials grant.
func clientToken(ctx context.Context, ic *IssuerClient, id, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ic.Base+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := ic.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("client credentials grant: status %d: %v", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// writeIntrospection is section 9.
func (r *Report) writeIntrospection(b *md) {
	in := r.Intro
	if in == nil || len(in.Verifier) == 0 {
		return
	}
	b.p("## 9. Token introspection: the verifier vs the issuer")
	b.p("")
	b.p("RFC 7662 `POST` with `token=<a live user access token>`, concurrency %d, %s per run and endpoint, from the bench process's Go client (net/http, the same for both), runs interleaved. The verifier (`/authz/introspect`, pinned like the other servers under load) authenticates the caller's service-account token and checks the asked token with its local keys, verified-token cache and revocation set: no call to the issuer. The issuer (`/oauth/introspect`, unpinned like in sections 1–3) authenticates the service account's client id and secret (HTTP Basic: its SHA-256 against the account read by `_id` from MongoDB), verifies the token with the same engine, and reads the token's session from Redis, so a logout is seen even before its event arrives. Rate limits are off on the bench's issuers. Every answer is checked to say `\"active\":true`.", in.Conc, in.D)
	b.p("")
	b.p("| run | verifier req/s | p50 | p99 | issuer req/s | p50 | p99 | verifier ÷ issuer | errors |\n|---|---|---|---|---|---|---|---|---|")
	var ratios []float64
	for i := range in.Verifier {
		if i >= len(in.Issuer) {
			break
		}
		v, s := in.Verifier[i], in.Issuer[i]
		ratio := v.RPS() / max(s.RPS(), 1e-9)
		ratios = append(ratios, ratio)
		b.p("| %d | %.0f | %s | %s | %.0f | %s | %s | %.1f× | %d / %d |", i+1, v.RPS(), ms(v.Q(.5)), ms(v.Q(.99)),
			s.RPS(), ms(s.Q(.5)), ms(s.Q(.99)), ratio, v.Errors, s.Errors)
	}
	b.p("")
	if len(ratios) > 0 {
		b.p("Median ratio: **%.1f×** the issuer's throughput, from the verifier, on %s.", medianF(ratios), r.Machine.CPU)
		b.p("")
	}
}
