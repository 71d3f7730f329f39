package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// clientsCreate runs `issuer clients create` against the issuer's stores,
// as an operator would, and returns the client id and secret it printed.
func (is *issuer) clientsCreate(t *testing.T, name string) (string, string) {
	t.Helper()
	out := is.command(t, "clients", "create", "--name", name)
	vals, err := url.ParseQuery(strings.ReplaceAll(strings.TrimSpace(out), "\n", "&"))
	if err != nil || vals.Get("client_id") == "" || vals.Get("client_secret") == "" {
		t.Fatalf("issuer clients create printed %q", out)
	}
	return vals.Get("client_id"), vals.Get("client_secret")
}

// command runs the issuer binary with args and the issuer's settings.
func (is *issuer) command(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(is.bin, args...)
	cmd.Env = is.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("issuer %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// clientToken is the client credentials grant at the issuer.
func (is *issuer) clientToken(t *testing.T, id, secret string) string {
	t.Helper()
	res, err := client.PostForm(is.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("client credentials: %d %v", res.StatusCode, err)
	}
	return out.AccessToken
}

// introspect asks the verifier's /authz/introspect about token, as caller.
func (v *verifier) introspect(t *testing.T, caller, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.URL+"/authz/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if caller != "" {
		req.Header.Set("Authorization", "Bearer "+caller)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if res.StatusCode == 200 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("introspect: %s: %v", b, err)
		}
	}
	return res.StatusCode, m
}

// The verifier answers RFC 7662 introspection from its own keys and
// revocation set: a gateway's service account asks, revocations are
// honoured, and it keeps answering with the issuer stopped. A service
// account's own token passes the check endpoints and dies everywhere when
// the account is deleted.
func TestIntrospectionWithoutTheIssuer(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuer(t, stack)
	v := startVerifier(t, is.verifierEnv(stack))
	waitReady(t, v, 30*time.Second)
	id, secret := is.clientsCreate(t, "gateway")
	gw := is.clientToken(t, id, secret)
	email := is.register(t)
	alive, dead := is.login(t, email), is.login(t, email)

	active := func(tok string) bool {
		t.Helper()
		code, m := v.introspect(t, gw, tok)
		if code != 200 {
			t.Fatalf("introspect: %d", code)
		}
		return m["active"] == true
	}
	code, m := v.introspect(t, gw, alive)
	if code != 200 || m["active"] != true || m["sid"] == nil || m["token_type"] != "Bearer" {
		t.Fatalf("a live token: %d %v", code, m)
	}
	if active("garbage") {
		t.Fatal("garbage is active")
	}
	is.logout(t, dead, "local")
	eventually(t, 5*time.Second, "the logged-out token inactive", func() bool { return !active(dead) })

	// A second service account: passes the check endpoint as itself, then
	// is deleted with the command line and rejected.
	id2, secret2 := is.clientsCreate(t, "batch")
	batch := is.clientToken(t, id2, secret2)
	if code := v.check(t, batch); code != 200 {
		t.Fatalf("a service account's token at forward-auth: %d", code)
	}
	if out := is.command(t, "clients", "delete", id2); !strings.Contains(out, "deleted") {
		t.Fatalf("clients delete: %q", out)
	}
	deleted := time.Now()
	d := untilDenied(t, v, batch, 30*time.Second)
	t.Logf("the deleted service account's token: rejected %s after the command returned (%s polling)", time.Since(deleted).Round(time.Microsecond), d)
	if active(batch) {
		t.Fatal("the deleted service account's token is active")
	}

	is.stop()
	if res, err := client.Get(is.URL + "/readyz"); err == nil {
		res.Body.Close()
		t.Fatal("the issuer still answers")
	}
	for range 20 { // and again: nothing was cached from the issuer for these answers
		if !active(alive) {
			t.Fatal("the live token is inactive with the issuer stopped")
		}
		if active(dead) {
			t.Fatal("the logged-out token is active with the issuer stopped")
		}
	}
	for _, tt := range []struct {
		name, caller string
		status       int
	}{
		{"no caller token", "", 401},
		{"a user's token as the caller", alive, 403},
		{"a revoked caller token", dead, 401},
		{"the deleted service account as the caller", batch, 401},
	} {
		if code, _ := v.introspect(t, tt.caller, alive); code != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.status)
		}
	}
}
