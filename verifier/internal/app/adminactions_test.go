package app_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// identity asks forward-auth about token: the status and the roles header.
func (v *verifier) identity(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.URL+"/authz/forward-auth", nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("X-Auth-Request-Roles")
}

// An administrator's actions reach bin/verifier: a disabled user's fresh
// token is refused within seconds (and the login is 403); after a role
// change the old token is refused and the refreshed one passes with the
// new roles.
func TestAdminActionsAtTheVerifier(t *testing.T) {
	stack := stackEnv(t)
	is := startIssuer(t, stack)
	v := startVerifier(t, is.verifierEnv(stack))
	waitReady(t, v, 30*time.Second)

	adminEmail := "root-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	cmd := exec.Command(is.bin, "users", "create", "--email", adminEmail, "--roles", "admin")
	cmd.Env, cmd.Stdin = is.env, strings.NewReader(password+"\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("issuer users create: %v\n%s", err, out)
	}
	adm := is.login(t, adminEmail)

	userID := func(email, token string) string {
		res, b := is.do(t, http.MethodGet, "/me", token, nil)
		var u struct{ ID string }
		if res.StatusCode != 200 || json.Unmarshal(b, &u) != nil {
			t.Fatalf("me: %d %s", res.StatusCode, b)
		}
		return u.ID
	}

	// Disable.
	email := is.register(t)
	tok := is.login(t, email)
	if code, _ := v.identity(t, tok); code != 200 {
		t.Fatalf("fresh token: %d", code)
	}
	id := userID(email, tok)
	res, b := is.do(t, http.MethodPatch, "/admin/users/"+id, adm, map[string]bool{"disabled": true})
	if res.StatusCode != 200 {
		t.Fatalf("disable: %d %s", res.StatusCode, b)
	}
	t.Logf("the disabled user's token: refused %s after the answer", untilDenied(t, v, tok, 30*time.Second))
	res, b = is.do(t, http.MethodPost, "/login", "", map[string]string{"email": email, "password": password})
	if res.StatusCode != 403 || !strings.Contains(string(b), "account_disabled") {
		t.Fatalf("login of a disabled user: %d %s", res.StatusCode, b)
	}

	// Roles.
	email = is.register(t)
	res, b = is.do(t, http.MethodPost, "/login", "", map[string]string{"email": email, "password": password})
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &login) != nil {
		t.Fatalf("login: %d %s", res.StatusCode, b)
	}
	var refresh string
	for _, c := range res.Cookies() {
		if c.Name == "refresh_token" {
			refresh = c.Value
		}
	}
	res, b = is.do(t, http.MethodPatch, "/admin/users/"+userID(email, login.AccessToken), adm, map[string][]string{"roles": {"editor", "ops"}})
	if res.StatusCode != 200 {
		t.Fatalf("roles: %d %s", res.StatusCode, b)
	}
	t.Logf("the token from before the role change: refused %s after the answer", untilDenied(t, v, login.AccessToken, 30*time.Second))
	res, b = is.do(t, http.MethodPost, "/access_token", "", map[string]string{"refresh_token": refresh})
	if res.StatusCode != 200 || json.Unmarshal(b, &login) != nil {
		t.Fatalf("refresh: %d %s", res.StatusCode, b)
	}
	if code, roles := v.identity(t, login.AccessToken); code != 200 || roles != "editor,ops" {
		t.Fatalf("the refreshed token: %d, roles %q", code, roles)
	}
}
