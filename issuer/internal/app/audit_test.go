package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// auditPage is GET /admin/audit's answer.
type auditPage struct {
	Entries []struct {
		ID, Type, Actor, Target, IP, Detail string
		Time                                time.Time
		UserAgent                           string `json:"user_agent"`
		RequestID                           string `json:"request_id"`
	}
	NextCursor *string `json:"next_cursor"`
}

func (s *issuer) audit(adm, query string) auditPage {
	s.t.Helper()
	r := s.do("GET", "/admin/audit?"+query, "", bearerHdr(adm)...)
	s.expect(r, http.StatusOK, "")
	var p auditPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// Every kind of security-relevant action is in the audit log, through the
// real flows (mail included), with who, whom, where from and which request;
// the log can be filtered and paged; and no stored entry holds any of the
// passwords, refresh tokens, access tokens, link tokens or client secrets
// the flows used.
func TestAuditLogRecordsEveryActionAndNoSecret(t *testing.T) {
	s := startMailIssuer(t, "", "JOTGUARD_REFRESH_REUSE_GRACE", "1s")
	box := devInbox(t)
	var secrets []string
	keep := func(v ...string) {
		for _, x := range v {
			if x != "" {
				secrets = append(secrets, x)
			}
		}
	}
	keep(pw)
	adm := s.admin()
	keep(adm)
	addr := newAddress()
	r := s.do("POST", "/register", jsonBody("email", addr, "password", pw), "X-Request-Id", "audit-register-1", "User-Agent", "audit-test/1.0")
	s.expect(r, http.StatusCreated, "")
	id := r.json(t)["id"].(string)
	at, rt := s.login(addr, pw)
	keep(at, rt)
	const wrong = "a wrong password that must not be logged"
	keep(wrong)
	s.expect(s.do("POST", "/login", jsonBody("email", addr, "password", wrong)), http.StatusUnauthorized, "invalid_credentials")
	s.expect(s.do("POST", "/login", jsonBody("email", "nobody-"+addr, "password", wrong)), http.StatusUnauthorized, "invalid_credentials")

	verify := s.follow(box.wait(addr, subjVerify, 1), "/account/verify-email")
	keep(verify)
	s.expect(s.do("POST", "/verify-email", jsonBody("token", verify)), http.StatusOK, "")

	// A reuse: the first refresh token again, after the grace window.
	r = s.refresh(rt)
	s.expect(r, http.StatusOK, "")
	keep(r.cookie("refresh_token").Value, r.json(t)["access_token"].(string))
	time.Sleep(1500 * time.Millisecond)
	s.expect(s.refresh(rt), http.StatusUnauthorized, "invalid_refresh_token")

	at, rt = s.login(addr, pw)
	keep(at, rt)
	const newPW = "the second passphrase of the audit"
	keep(newPW)
	s.expect(s.do("POST", "/me/password", jsonBody("current_password", pw, "new_password", newPW), bearerHdr(at)...), http.StatusNoContent, "")
	next := newAddress()
	s.expect(s.do("PATCH", "/me", jsonBody("email", next), bearerHdr(at)...), http.StatusOK, "")
	change := s.follow(box.wait(next, subjVerify, 1), "/account/verify-email")
	keep(change)
	s.expect(s.do("POST", "/verify-email", jsonBody("token", change)), http.StatusOK, "")
	s.expect(s.do("POST", "/password/forgot", jsonBody("email", next)), http.StatusAccepted, "")
	reset := s.follow(box.wait(next, subjReset, 1), "/account/reset-password")
	keep(reset)
	const thirdPW = "the third passphrase of the audit"
	keep(thirdPW)
	s.expect(s.do("POST", "/password/reset", jsonBody("token", reset, "password", thirdPW)), http.StatusNoContent, "")
	at, rt = s.login(next, thirdPW)
	keep(at, rt)
	s.expect(s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt), http.StatusNoContent, "")
	at, _ = s.login(next, thirdPW)
	keep(at)
	s.expect(s.do("DELETE", "/me", jsonBody("password", thirdPW), bearerHdr(at)...), http.StatusNoContent, "")

	// The administrator's actions, on another user, and a service account.
	other, _ := s.login(s.register(pw), pw)
	otherID := s.userID(other)
	s.expect(s.do("PATCH", "/admin/users/"+otherID, `{"roles":["editor"],"email_verified":true}`, bearerHdr(adm)...), http.StatusOK, "")
	s.expect(s.do("POST", "/admin/users/"+otherID+"/logout", "", bearerHdr(adm)...), http.StatusNoContent, "")
	s.expect(s.do("DELETE", "/admin/users/"+otherID, "", bearerHdr(adm)...), http.StatusNoContent, "")
	r = s.do("POST", "/admin/clients", `{"name":"audited","roles":["reader"]}`, bearerHdr(adm)...)
	s.expect(r, http.StatusCreated, "")
	clientID, secret := r.json(t)["client_id"].(string), r.json(t)["client_secret"].(string)
	keep(secret)
	r = s.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}})
	s.expect(r, http.StatusOK, "")
	keep(r.json(t)["access_token"].(string))
	s.expect(s.do("DELETE", "/admin/clients/"+clientID, "", bearerHdr(adm)...), http.StatusNoContent, "")

	// The entries are written behind the requests: wait for every type.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var missing []string
		for _, typ := range auth.AuditTypes {
			if typ == auth.AuditIdentityLinked || typ == auth.AuditIdentityUnlinked {
				continue // the sign-in through a provider's: federation_test.go
			}
			if len(s.audit(adm, "limit=1&type="+typ).Entries) == 0 {
				missing = append(missing, typ)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry of types %v after 30 s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The user's own history, oldest first.
	var types []string
	page := s.audit(adm, "user_id="+id+"&limit=200")
	for i := len(page.Entries) - 1; i >= 0; i-- {
		types = append(types, page.Entries[i].Type)
	}
	want := []string{auth.AuditUserRegistered, auth.AuditLoginSucceeded, auth.AuditLoginFailed, auth.AuditEmailVerified,
		auth.AuditRefreshReuse, auth.AuditLoginSucceeded, auth.AuditPasswordChanged, auth.AuditEmailChanged,
		auth.AuditPasswordReset, auth.AuditLoginSucceeded, auth.AuditLogout, auth.AuditLoginSucceeded, auth.AuditAccountDeleted}
	if !slices.Equal(types, want) {
		t.Errorf("the user's entries:\n%v\nwant\n%v", types, want)
	}
	reg := page.Entries[len(page.Entries)-1]
	if reg.Actor != id || reg.Target != id || reg.IP != "127.0.0.1" || reg.UserAgent != "audit-test/1.0" ||
		reg.RequestID != "audit-register-1" || reg.Time.IsZero() || time.Since(reg.Time) > time.Minute {
		t.Errorf("the registration's entry: %+v", reg)
	}
	admID := s.userID(adm)
	for _, e := range s.audit(adm, "user_id="+otherID).Entries {
		if strings.HasPrefix(e.Type, "admin.") && e.Actor != admID {
			t.Errorf("an admin entry's actor: %+v, want %s", e, admID)
		}
	}
	if e := s.audit(adm, "type=client.revoked&limit=1").Entries; e[0].Target != clientID || e[0].Actor != admID {
		t.Errorf("client.revoked: %+v", e[0])
	}
	if e := s.audit(adm, "type=login.failed&user_id="+id).Entries; len(e) != 1 || e[0].Detail != "wrong_password" || e[0].Actor != "" {
		t.Errorf("the failed login: %+v", e)
	}

	// Paging by 3 visits every entry once, newest first.
	all := s.audit(adm, "limit=200").Entries
	var paged []string
	for cursor, n := "", 0; ; n++ {
		p := s.audit(adm, "limit=3&cursor="+url.QueryEscape(cursor))
		for _, e := range p.Entries {
			paged = append(paged, e.ID)
		}
		if p.NextCursor == nil || n > 100 {
			break
		}
		cursor = *p.NextCursor
	}
	var ids []string
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(paged, ids) || !slices.IsSortedFunc(ids, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("paged %d entries %v, want the %d of one page, newest first", len(paged), paged, len(ids))
	}

	// No secret in any stored entry, as MongoDB holds it.
	cur, err := issuerDB(t, s.cfg).Collection(mongostore.AuditCollection).Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != len(all) {
		t.Fatalf("%d stored entries, %d listed", len(docs), len(all))
	}
	for _, d := range docs {
		b, err := bson.MarshalExtJSON(d, false, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if strings.Contains(string(b), sec) || (len(sec) > 16 && strings.Contains(string(b), sec[:16])) {
				t.Fatalf("a stored audit entry holds a secret (%.8s…): %s", sec, b)
			}
		}
	}
	t.Logf("%d entries checked against %d secrets", len(docs), len(secrets))
}
