package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/app"
	"github.com/jotguard/jotguard/sdk"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// These tests run the administration API, service accounts and
// introspection end to end: the issuer on the dev stack's servers, and a
// verifier's engine (an sdk Verifier fed by the revocation topic, as
// bin/verifier runs it) holding the tokens the actions must kill.

// command runs an administration command (issuer users …, issuer clients
// …) against s's stores, as bin/issuer does; it returns what it printed.
func (s *issuer) command(stdin string, args ...string) string {
	s.t.Helper()
	cmd, rest, err := app.ParseCommand(args)
	if err != nil {
		s.t.Fatalf("%v: %v", args, err)
	}
	if len(rest) > 0 {
		s.t.Fatalf("%v: settings flags %v", args, rest)
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := app.Command(s.t.Context(), s.cfg, log, cmd, strings.NewReader(stdin), &out); err != nil {
		s.t.Fatalf("%v: %v", args, err)
	}
	return out.String()
}

// admin creates an administrator with the command line and returns its
// access token.
func (s *issuer) admin() string {
	s.t.Helper()
	email := newAddress()
	if out := s.command(pw+"\n", "users", "create", "--email", email, "--roles", "admin"); !strings.Contains(out, "created user") {
		s.t.Fatalf("users create: %q", out)
	}
	at, _ := s.login(email, pw)
	return at
}

// userID is the sub of an access token.
func (s *issuer) userID(at string) string {
	s.t.Helper()
	c, _ := s.verify(at)
	return c.Subject
}

// waitRevoked waits until v rejects token as revoked and logs how long
// after since it took; only a hang (30 s) fails: speed is the bench's.
func waitRevoked(t *testing.T, v *sdk.Verifier, token, what string, since time.Time) {
	t.Helper()
	for {
		_, err := v.Verify(t.Context(), token)
		if errors.Is(err, sdk.ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v, want ErrRevoked", what, err)
		}
		if time.Since(since) > 30*time.Second {
			t.Fatalf("%s: still accepted 30 s after the action answered", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(since)
	t.Logf("%s: rejected by the verifier %s after the action answered", what, took.Round(time.Microsecond))
	if took > 2*time.Second {
		t.Logf("that is over the 2 s the product promises (a loaded machine?)")
	}
}

// Disabling a user while a verifier holds a fresh token of theirs: the
// verifier rejects it within seconds, the refresh and the login answer 403
// account_disabled; enabled again, the user logs in, but the sessions the
// disable ended stay ended.
func TestAdminDisableRevokesEverywhere(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	email := s.register(pw)
	at, rt := s.login(email, pw)
	id := s.userID(at)
	v := feedVerifier(t, s)
	if _, err := v.Verify(t.Context(), at); err != nil {
		t.Fatalf("before: %v", err)
	}
	r := s.do("PATCH", "/admin/users/"+id, `{"disabled":true}`, bearerHdr(adm)...)
	done := time.Now()
	s.expect(r, http.StatusOK, "")
	if u := r.json(t); u["disabled"] != true || u["id"] != id {
		t.Fatalf("PATCH answered %v", u)
	}
	waitRevoked(t, v, at, "the disabled user's access token", done)
	s.expect(s.do("POST", "/login", jsonBody("email", email, "password", pw)), http.StatusForbidden, "account_disabled")
	s.expect(s.refresh(rt), http.StatusForbidden, "account_disabled")
	s.expect(s.do("GET", "/me", "", bearerHdr(at)...), http.StatusUnauthorized, "invalid_token")
	if u := s.do("GET", "/admin/users/"+id, "", bearerHdr(adm)...).json(t); u["disabled"] != true {
		t.Fatalf("GET after disable: %v", u)
	}
	s.expect(s.do("PATCH", "/admin/users/"+id, `{"disabled":false}`, bearerHdr(adm)...), http.StatusOK, "")
	s.expect(s.refresh(rt), http.StatusUnauthorized, "invalid_refresh_token")
	at2, _ := s.login(email, pw)
	if _, err := v.Verify(t.Context(), at2); err != nil {
		t.Fatalf("a login after re-enabling: %v", err)
	}
}

// A role change: the tokens issued before are rejected, the session lives
// on, and its next refresh carries the new roles in a token every verifier
// accepts.
func TestAdminRoleChange(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	at, rt := s.login(s.register(pw), pw)
	id := s.userID(at)
	v := feedVerifier(t, s)
	r := s.do("PATCH", "/admin/users/"+id, `{"roles":["editor","billing"]}`, bearerHdr(adm)...)
	done := time.Now()
	s.expect(r, http.StatusOK, "")
	waitRevoked(t, v, at, "the access token issued before the role change", done)
	r = s.refresh(rt)
	s.expect(r, http.StatusOK, "")
	next := r.json(t)["access_token"].(string)
	c, err := v.Verify(t.Context(), next)
	if err != nil {
		t.Fatalf("the refreshed token: %v", err)
	}
	if !slices.Equal(c.Roles, []string{"editor", "billing"}) {
		t.Fatalf("the refreshed token's roles: %v", c.Roles)
	}
	// Without the admin role: 403 insufficient_scope on every route.
	r = s.do("GET", "/admin/users", "", bearerHdr(next)...)
	s.expect(r, http.StatusForbidden, "insufficient_scope")
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) {
		t.Fatalf("challenge %q", h)
	}
}

// The command line replaces roles the same way: old tokens revoked, the
// next refresh has the new ones.
func TestUsersRolesCommand(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	v := feedVerifier(t, s)
	out := s.command("", "users", "roles", strings.ToUpper(email), "admin,ops")
	done := time.Now()
	if !strings.Contains(out, "roles admin,ops") {
		t.Fatalf("users roles: %q", out)
	}
	waitRevoked(t, v, at, "the token issued before `issuer users roles`", done)
	r := s.refresh(rt)
	s.expect(r, http.StatusOK, "")
	adm := r.json(t)["access_token"].(string)
	s.expect(s.do("GET", "/admin/users?limit=1", "", bearerHdr(adm)...), http.StatusOK, "")
}

// A forced logout ends every session (the user may log in again at once);
// a deletion removes the user.
func TestAdminLogoutAndDelete(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	email := s.register(pw)
	at, rt := s.login(email, pw)
	at2, _ := s.login(email, pw)
	id := s.userID(at)
	v := feedVerifier(t, s)
	r := s.do("POST", "/admin/users/"+id+"/logout", "", bearerHdr(adm)...)
	done := time.Now()
	s.expect(r, http.StatusNoContent, "")
	waitRevoked(t, v, at, "session 1 after the forced logout", done)
	waitRevoked(t, v, at2, "session 2 after the forced logout", done)
	s.expect(s.refresh(rt), http.StatusUnauthorized, "invalid_refresh_token")
	at3, _ := s.login(email, pw)
	if _, err := v.Verify(t.Context(), at3); err != nil {
		t.Fatalf("a login right after the forced logout: %v", err)
	}
	r = s.do("DELETE", "/admin/users/"+id, "", bearerHdr(adm)...)
	done = time.Now()
	s.expect(r, http.StatusNoContent, "")
	waitRevoked(t, v, at3, "the deleted user's access token", done)
	s.expect(s.do("POST", "/login", jsonBody("email", email, "password", pw)), http.StatusUnauthorized, "invalid_credentials")
	for _, req := range [][2]string{{"GET", ""}, {"DELETE", ""}, {"POST", "/logout"}, {"PATCH", ""}} {
		s.expect(s.do(req[0], "/admin/users/"+id+req[1], map[string]string{"PATCH": `{"disabled":true}`}[req[0]], bearerHdr(adm)...),
			http.StatusNotFound, "not_found")
	}
	s.register(pw) // the address is free again: any new account
}

// Who may call the admin API, and what it refuses.
func TestAdminAPIRefusals(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	user, _ := s.login(s.register(pw), pw)
	r := s.do("GET", "/admin/users", "")
	s.expect(r, http.StatusUnauthorized, "invalid_token")
	if r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("challenge %q", r.Header.Get("WWW-Authenticate"))
	}
	s.expect(s.do("GET", "/admin/audit", "", bearerHdr("garbage")...), http.StatusUnauthorized, "invalid_token")
	s.expect(s.do("DELETE", "/admin/clients/x", "", bearerHdr(user)...), http.StatusForbidden, "insufficient_scope")
	s.expect(s.do("POST", "/admin/clients", `{"name":"x"}`, bearerHdr(user)...), http.StatusForbidden, "insufficient_scope")
	id := s.userID(user)
	for _, body := range []string{`{}`, `{"roles":"admin"}`, `{"disabled":"yes"}`, `{"roles":["a b"]}`, `{"role":["admin"]}`,
		`{"roles":null}`, `[]`, `{"disabled":true} x`} {
		r := s.do("PATCH", "/admin/users/"+id, body, bearerHdr(adm)...)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("PATCH %s: %d %s, want 400", body, r.StatusCode, r.body)
		}
	}
	s.expect(s.do("PATCH", "/admin/users/"+id, `{"disabled":true}`, bearerHdr(adm)...), http.StatusOK, "")
	s.expect(s.do("PATCH", "/admin/users/"+id, "disabled=true", "Authorization", "Bearer "+adm, "Content-Type", "application/x-www-form-urlencoded"),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=NOT%20A%20CURSOR"} {
		s.expect(s.do("GET", "/admin/users?"+q, "", bearerHdr(adm)...), http.StatusBadRequest, "invalid_request")
	}
	s.expect(s.do("GET", "/admin/audit?type=nope", "", bearerHdr(adm)...), http.StatusBadRequest, "invalid_request")
	s.expect(s.do("GET", "/admin/users/nobody", "", bearerHdr(adm)...), http.StatusNotFound, "not_found")
	s.expect(s.do("DELETE", "/admin/clients/svc-nobody", "", bearerHdr(adm)...), http.StatusNotFound, "not_found")
	for _, body := range []string{`{}`, `{"name":""}`, `{"name":"x","roles":"admin"}`, `{"name":5}`} {
		s.expect(s.do("POST", "/admin/clients", body, bearerHdr(adm)...), http.StatusBadRequest, "invalid_request")
	}
}

// Listing and searching users, page by page.
func TestAdminListUsers(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	tag := strings.ToLower(randName()[5:13])
	var want []string
	for range 5 {
		email := "list-" + tag + "-" + newAddress()
		s.register(pw)
		if r := s.do("POST", "/register", jsonBody("email", email, "password", pw)); r.StatusCode != http.StatusCreated {
			t.Fatalf("register: %d", r.StatusCode)
		}
		want = append(want, email)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		r := s.do("GET", "/admin/users?limit=2&query="+url.QueryEscape(strings.ToUpper(tag))+"&cursor="+cursor, "", bearerHdr(adm)...)
		s.expect(r, http.StatusOK, "")
		page := r.json(t)
		users := page["users"].([]any)
		if len(users) > 2 || pages > 5 {
			t.Fatalf("page %d: %v", pages, page)
		}
		for _, u := range users {
			got = append(got, u.(map[string]any)["email"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = url.QueryEscape(next)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("search %q: %v, want %v", tag, got, want)
	}
}

// A service account: created by the admin API with its secret shown once,
// a token through golang.org/x/oauth2/clientcredentials that a verifier
// accepts, no session; deleted, its tokens are rejected everywhere and its
// secret stops working.
func TestServiceAccount(t *testing.T) {
	s := startIssuer(t, nil)
	adm := s.admin()
	r := s.do("POST", "/admin/clients", `{"name":"reports","roles":["reader"]}`, bearerHdr(adm)...)
	s.expect(r, http.StatusCreated, "")
	created := r.json(t)
	id, secret := created["client_id"].(string), created["client_secret"].(string)
	if !strings.HasPrefix(id, "svc-") || !strings.HasPrefix(secret, "jgs_") {
		t.Fatalf("created %v", created)
	}
	list := s.do("GET", "/admin/clients", "", bearerHdr(adm)...)
	s.expect(list, http.StatusOK, "")
	if strings.Contains(string(list.body), secret) || !strings.Contains(string(list.body), id) {
		t.Fatalf("list: %s", list.body)
	}
	v := feedVerifier(t, s)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.base + "/oauth/token", AuthStyle: style}
		tok, err := cc.Token(context.WithValue(t.Context(), oauth2.HTTPClient, s.http))
		if err != nil {
			t.Fatalf("client credentials (style %d): %v", style, err)
		}
		c, err := v.Verify(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatalf("the verifier: %v", err)
		}
		if c.Subject != id || c.ClientID != id || c.SessionID != "" || !c.ServiceAccount() || c.Email != "" ||
			!slices.Equal(c.Roles, []string{"reader"}) || tok.RefreshToken != "" {
			t.Fatalf("claims %+v, token %+v", c, tok)
		}
	}
	// The same through the form, checked against the OpenAPI document.
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	s.expect(r, http.StatusOK, "")
	at := r.json(t)["access_token"].(string)
	if _, has := r.json(t)["refresh_token"]; has {
		t.Fatal("a refresh token for a service account")
	}
	s.expect(s.do("GET", "/me", "", bearerHdr(at)...), http.StatusUnauthorized, "invalid_token")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret+"x")))
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic)
	if r.StatusCode != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong secret: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
	if r.StatusCode != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("no credentials: %d %s", r.StatusCode, r.body)
	}
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}, "Authorization", basic)
	if r.StatusCode != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" {
		t.Fatalf("credentials twice: %d %s", r.StatusCode, r.body)
	}
	r = s.do("DELETE", "/admin/clients/"+id, "", bearerHdr(adm)...)
	done := time.Now()
	s.expect(r, http.StatusNoContent, "")
	waitRevoked(t, v, at, "the deleted service account's token", done)
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if r.StatusCode != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("a deleted client's secret: %d %s", r.StatusCode, r.body)
	}
}

// The command line creates, lists and deletes service accounts.
func TestClientsCommands(t *testing.T) {
	s := startIssuer(t, nil)
	out := s.command("", "clients", "create", "--name", "batch job", "--roles=reader,writer")
	vals, err := url.ParseQuery(strings.ReplaceAll(strings.TrimSpace(out), "\n", "&"))
	id, secret := vals.Get("client_id"), vals.Get("client_secret")
	if err != nil || id == "" || secret == "" {
		t.Fatalf("clients create: %q", out)
	}
	if out := s.command("", "clients", "list"); !strings.Contains(out, id) || !strings.Contains(out, "batch job") ||
		!strings.Contains(out, "reader,writer") || strings.Contains(out, secret) {
		t.Fatalf("clients list: %q", out)
	}
	r := s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	s.expect(r, http.StatusOK, "")
	if out := s.command("", "clients", "delete", id); !strings.Contains(out, "deleted "+id) {
		t.Fatalf("clients delete: %q", out)
	}
	if out := s.command("", "clients", "list"); strings.Contains(out, id) {
		t.Fatalf("clients list after delete: %q", out)
	}
}

// RFC 7662 at the issuer: a service account authenticates (Basic, form or
// Bearer); live tokens are active with their claims; revoked, expired,
// foreign or garbage tokens are {"active": false}; a user may not call it.
func TestIssuerIntrospection(t *testing.T) {
	s := startIssuer(t, nil)
	id, secret := s.serviceAccount()
	at, rt := s.login(s.register(pw), pw)
	svcTok := s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}).json(t)["access_token"].(string)
	basic := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
	callers := map[string]func(url.Values) resp{
		"basic": func(v url.Values) resp { return s.form("/oauth/introspect", v, basic...) },
		"form": func(v url.Values) resp {
			v.Set("client_id", id)
			v.Set("client_secret", secret)
			return s.form("/oauth/introspect", v)
		},
		"bearer": func(v url.Values) resp { return s.form("/oauth/introspect", v, bearerHdr(svcTok)...) },
	}
	for name, ask := range callers {
		r := ask(url.Values{"token": {at}, "token_type_hint": {"access_token"}})
		s.expect(r, http.StatusOK, "")
		got := r.json(t)
		if got["active"] != true || got["sub"] != s.userID(at) || got["sid"] == "" || got["token_type"] != "Bearer" ||
			r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: a live token: %v", name, got)
		}
		for what, tok := range map[string]string{"garbage": "garbage", "a refresh token": rt, "empty-ish": strings.Repeat("a.", 3)} {
			if r := ask(url.Values{"token": {tok}}); r.StatusCode != 200 || string(bytes.TrimSpace(r.body)) != `{"active":false}` {
				t.Fatalf("%s: %s: %d %s", name, what, r.StatusCode, r.body)
			}
		}
	}
	if got := callers["basic"](url.Values{"token": {svcTok}}).json(t); got["active"] != true || got["client_id"] != id || got["sid"] != nil {
		t.Fatalf("a service account's token: %v", got)
	}
	// Logged out: inactive at once (the issuer sees the session gone).
	s.expect(s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt), http.StatusNoContent, "")
	if got := callers["basic"](url.Values{"token": {at}}).json(t); got["active"] != false {
		t.Fatalf("after logout: %v", got)
	}
	// Refused callers.
	r := s.form("/oauth/introspect", url.Values{"token": {at}})
	if r.StatusCode != 401 || r.json(t)["error"] != "invalid_client" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no credentials: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	user, _ := s.login(s.register(pw), pw)
	r = s.form("/oauth/introspect", url.Values{"token": {at}}, bearerHdr(user)...)
	if r.StatusCode != 403 || r.json(t)["error"] != "insufficient_scope" {
		t.Fatalf("a user's token: %d %s", r.StatusCode, r.body)
	}
	r = s.form("/oauth/introspect", url.Values{"token": {at}}, bearerHdr("garbage")...)
	if r.StatusCode != 401 || r.json(t)["error"] != "invalid_token" {
		t.Fatalf("a garbage caller token: %d %s", r.StatusCode, r.body)
	}
	r = s.form("/oauth/introspect", url.Values{}, basic...)
	if r.StatusCode != 400 || r.json(t)["error"] != "invalid_request" {
		t.Fatalf("no token: %d %s", r.StatusCode, r.body)
	}
}

// serviceAccount creates one with the command line: its id and secret.
func (s *issuer) serviceAccount(roles ...string) (string, string) {
	s.t.Helper()
	out := s.command("", "clients", "create", "--name", "test", "--roles", strings.Join(roles, ","))
	vals, _ := url.ParseQuery(strings.ReplaceAll(strings.TrimSpace(out), "\n", "&"))
	return vals.Get("client_id"), vals.Get("client_secret")
}

// Introspection is a credential endpoint: rate limited per client network.
func TestIntrospectionIsRateLimited(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=3/1m"})
	id, secret := s.serviceAccount()
	v := url.Values{"token": {"x"}, "client_id": {id}, "client_secret": {secret}}
	for i := range 3 {
		if r := s.form("/oauth/introspect", v); r.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, r.StatusCode, r.body)
		}
	}
	r := s.form("/oauth/introspect", v)
	s.expect(r, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestParseCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want app.Cmd
		rest []string
	}{
		{[]string{"users", "create", "--email", "a@example.com", "--roles=admin", "--mongo-db", "x"},
			app.Cmd{Group: "users", Name: "create", Email: "a@example.com", Roles: "admin"}, []string{"--mongo-db=x"}},
		{[]string{"users", "roles", "--redis-url=redis://h", "a@example.com", "admin,ops"},
			app.Cmd{Group: "users", Name: "roles", Args: []string{"a@example.com", "admin,ops"}}, []string{"--redis-url=redis://h"}},
		{[]string{"clients", "delete", "svc-1"}, app.Cmd{Group: "clients", Name: "delete", Args: []string{"svc-1"}}, nil},
		{[]string{"clients", "list", "--help"}, app.Cmd{Group: "clients", Name: "list"}, []string{"--help"}},
		{[]string{"users", "create", "-h"}, app.Cmd{Group: "users", Name: "create"}, []string{"-h"}},
	} {
		got, rest, err := app.ParseCommand(tt.args)
		if err != nil || got.Group != tt.want.Group || got.Name != tt.want.Name || got.Email != tt.want.Email ||
			got.Roles != tt.want.Roles || !slices.Equal(got.Args, tt.want.Args) || !slices.Equal(rest, tt.rest) {
			t.Errorf("ParseCommand(%q) = %+v, %q, %v; want %+v, %q", tt.args, got, rest, err, tt.want, tt.rest)
		}
	}
	for _, bad := range [][]string{{"users"}, {"users", "delete"}, {"users", "create"}, {"users", "roles", "a@example.com"},
		{"clients", "create"}, {"clients", "delete"}, {"clients", "delete", "a", "b"}, {"users", "create", "--email"}} {
		if _, _, err := app.ParseCommand(bad); err == nil {
			t.Errorf("ParseCommand(%q) accepted", bad)
		}
	}
}
