package app_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/httpapi"
)

const pw = "correct horse battery staple"

func TestRegister(t *testing.T) {
	s := startIssuer(t, nil)
	r := s.do("POST", "/register", `{"email":"  Ann@Example.COM ","password":"`+pw+`","username":"Ann_1","first_name":"Ann","last_name":"Lee"}`)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", r.StatusCode, r.body)
	}
	u := r.json(t)
	if u["email"] != "ann@example.com" || u["username"] != "Ann_1" || u["first_name"] != "Ann" || u["id"] == "" {
		t.Fatalf("user = %v", u)
	}
	if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password") {
		t.Fatalf("register leaks a secret: %s", r.body)
	}
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"same email, other case", `{"email":"ANN@example.com","password":"` + pw + `"}`, 409, "email_taken"},
		{"same username, other case", `{"email":"b@example.com","password":"` + pw + `","username":"ann_1"}`, 409, "username_taken"},
		{"short password", `{"email":"c@example.com","password":"short"}`, 400, "weak_password"},
		{"password too long", `{"email":"c@example.com","password":"` + strings.Repeat("x", 129) + `"}`, 400, "weak_password"},
		{"bad email", `{"email":"not-an-email","password":"` + pw + `"}`, 400, "invalid_request"},
		{"missing email", `{"password":"` + pw + `"}`, 400, "invalid_request"},
		{"bad username", `{"email":"d@example.com","password":"` + pw + `","username":"a b"}`, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("POST", "/register", tt.body)
			if r.StatusCode != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d %s", r.StatusCode, r.body, tt.status, tt.code)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	// Validation errors name the failing fields.
	r = s.do("POST", "/register", `{"email":"nope","password":"x"}`)
	if !strings.Contains(string(r.body), `"field":"email"`) || !strings.Contains(string(r.body), `"field":"password"`) {
		t.Fatalf("validation body lists no fields: %s", r.body)
	}
	// 12 characters after NFKC is enough.
	if r := s.do("POST", "/register", `{"email":"e@example.com","password":"twelve chars"}`); r.StatusCode != 201 {
		t.Fatalf("12-character password: %d %s", r.StatusCode, r.body)
	}
}

func TestLoginTokensAndCookie(t *testing.T) {
	s := startIssuer(t, nil)
	s.do("POST", "/register", `{"email":"ann@example.com","password":"`+pw+`","username":"ann"}`)
	for _, body := range []string{
		`{"email":"ANN@example.com","password":"` + pw + `"}`,
		`{"username":"Ann","password":"` + pw + `"}`,
		`{"identifier":"ann@example.com","password":"` + pw + `"}`,
		`{"identifier":"ann","password":"` + pw + `"}`,
	} {
		r := s.do("POST", "/login", body)
		if r.StatusCode != 200 {
			t.Fatalf("login %s: %d %s", body, r.StatusCode, r.body)
		}
		m := r.json(t)
		at := m["access_token"].(string)
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(300) || r.Header.Get("Authorization") != "Bearer "+at {
			t.Fatalf("token response %v / Authorization %q", m, r.Header.Get("Authorization"))
		}
		if u, _ := m["user"].(map[string]any); u["email"] != "ann@example.com" {
			t.Fatalf("user in body = %v", m["user"])
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q", cc)
		}
		raw := r.Header.Get("Set-Cookie")
		for _, want := range []string{"refresh_token=", "HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=2419200"} {
			if !strings.Contains(raw, want) {
				t.Fatalf("Set-Cookie %q lacks %s", raw, want)
			}
		}
		if strings.Contains(strings.ToLower(raw), "domain") {
			t.Fatalf("Set-Cookie %q has a Domain", raw)
		}
		if v := r.cookie("refresh_token").Value; len(v) != 64 {
			t.Fatalf("refresh token %q is not a 128-bit chain id and 256 random bits, base64url", v)
		}
		c, tok := s.verify(at)
		if tok.Header["typ"] != "at+jwt" || tok.Header["kid"] == nil || tok.Header["alg"] != "ES256" {
			t.Fatalf("header %v", tok.Header)
		}
		if c.Issuer != testIssuer || c.Subject == "" || c.SessionID == "" || c.ID == "" || c.ClientID != "jotguard" ||
			c.Email != "ann@example.com" || c.EmailVerified || len(c.Audience) != 1 || c.Audience[0] != "jotguard" ||
			c.ExpiresAt.Sub(c.IssuedAt.Time) != 5*time.Minute {
			t.Fatalf("claims %+v", c)
		}
	}
	// Wrong password and unknown user: the same status and body.
	bad := s.do("POST", "/login", `{"email":"ann@example.com","password":"wrong password!"}`)
	unknown := s.do("POST", "/login", `{"email":"nobody@example.com","password":"wrong password!"}`)
	if bad.StatusCode != 401 || bad.code() != "invalid_credentials" || string(bad.body) != string(unknown.body) || unknown.StatusCode != 401 {
		t.Fatalf("wrong password %d %s; unknown user %d %s", bad.StatusCode, bad.body, unknown.StatusCode, unknown.body)
	}
	if r := s.do("POST", "/login", `{"email":"ann@example.com"}`); r.StatusCode != 400 {
		t.Fatalf("login without password: %d", r.StatusCode)
	}
}

func TestRefreshRotationAndGrace(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	_, rt := s.login(email, pw)

	r := s.refresh(rt)
	if r.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	next := r.cookie("refresh_token").Value
	if next == rt || r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		t.Fatalf("rotation: new %q old %q, headers %v", next, rt, r.Header)
	}
	c, _ := s.verify(r.json(t)["access_token"].(string))
	// A grace retry: within the grace window the old token gives the same successor.
	r2 := s.refresh(rt)
	if r2.StatusCode != 200 || r2.cookie("refresh_token").Value != next {
		t.Fatalf("grace retry: %d, cookie %v, want %q", r2.StatusCode, r2.cookie("refresh_token"), next)
	}
	c2, _ := s.verify(r2.json(t)["access_token"].(string))
	if c2.SessionID != c.SessionID || c2.ID == c.ID {
		t.Fatalf("sid %s vs %s, jti %s vs %s", c2.SessionID, c.SessionID, c2.ID, c.ID)
	}
	// The refresh token in a JSON body works too.
	r3 := s.do("POST", "/access_token", `{"refresh_token":"`+next+`"}`)
	if r3.StatusCode != 200 {
		t.Fatalf("refresh by body: %d %s", r3.StatusCode, r3.body)
	}
	for name, r := range map[string]resp{
		"garbage":      s.refresh("garbage"),
		"unknown":      s.refresh(strings.Repeat("A", 43)),
		"none":         s.do("POST", "/access_token", ""),
		"query string": s.do("POST", "/access_token?refresh_token="+r3.cookie("refresh_token").Value, ""),
	} {
		if r.StatusCode != 401 || r.code() != "invalid_refresh_token" {
			t.Errorf("%s: %d %s, want 401 invalid_refresh_token", name, r.StatusCode, r.body)
		}
	}
}

func TestConcurrentRefreshOneSuccessor(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	_, rt := s.login(email, pw)
	var mu sync.Mutex
	successors := map[string]int{}
	parallel(20, func(int) {
		r := s.refresh(rt)
		if r.StatusCode != 200 {
			t.Errorf("concurrent refresh: %d %s", r.StatusCode, r.body)
			return
		}
		mu.Lock()
		successors[r.cookie("refresh_token").Value]++
		mu.Unlock()
	})
	if len(successors) != 1 {
		t.Fatalf("20 concurrent refreshes gave %d successors: %v", len(successors), successors)
	}
}

func TestConcurrentDuplicateRegistrations(t *testing.T) {
	s := startIssuer(t, nil)
	var created, conflict atomic.Int32
	parallel(50, func(i int) {
		r := s.do("POST", "/register", fmt.Sprintf(`{"email":"Dup@Example.com","password":"%s","username":"dup%d"}`, pw, i))
		switch {
		case r.StatusCode == 201:
			created.Add(1)
		case r.StatusCode == 409 && r.code() == "email_taken":
			conflict.Add(1)
		default:
			t.Errorf("register: %d %s", r.StatusCode, r.body)
		}
	})
	if created.Load() != 1 || conflict.Load() != 49 {
		t.Fatalf("%d created, %d conflicts; want 1 and 49", created.Load(), conflict.Load())
	}
}

func TestMeAndLogout(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	if r := s.do("GET", "/me", "", "Authorization", "Bearer "+at); r.StatusCode != 200 || r.json(t)["email"] != email {
		t.Fatalf("/me: %d %s", r.StatusCode, r.body)
	}
	for name, r := range map[string]resp{
		"no token":       s.do("GET", "/me", ""),
		"query token":    s.do("GET", "/me?access_token="+at, ""),
		"garbage":        s.do("GET", "/me", "", "Authorization", "Bearer abc.def.ghi"),
		"refresh as AT":  s.do("GET", "/me", "", "Authorization", "Bearer "+rt),
		"tampered token": s.do("GET", "/me", "", "Authorization", "Bearer "+at[:len(at)-4]+"AAAA"),
	} {
		if r.StatusCode != 401 {
			t.Errorf("/me %s: %d %s", name, r.StatusCode, r.body)
		}
	}
	// An access token is not a refresh token.
	if r := s.do("POST", "/access_token", `{"refresh_token":"`+at+`"}`); r.StatusCode != 401 {
		t.Fatalf("access token as refresh: %d", r.StatusCode)
	}
	r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt)
	if r.StatusCode != 204 {
		t.Fatalf("logout: %d %s", r.StatusCode, r.body)
	}
	if c := r.cookie("refresh_token"); c == nil || c.Value != "" || c.MaxAge >= 0 {
		t.Fatalf("logout cookie %v: not cleared", r.Header.Get("Set-Cookie"))
	}
	if r := s.refresh(rt); r.StatusCode != 401 {
		t.Fatalf("refresh after logout: %d", r.StatusCode)
	}
	if r := s.do("GET", "/me", "", "Authorization", "Bearer "+at); r.StatusCode != 401 {
		t.Fatalf("/me after logout: %d", r.StatusCode)
	}
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 401 {
		t.Fatalf("second logout: %d", r.StatusCode)
	}
	if r := s.do("DELETE", "/logout", ""); r.StatusCode != 401 {
		t.Fatalf("logout without credentials: %d", r.StatusCode)
	}
	// Logout by Bearer access token, with DELETE.
	at2, rt2 := s.login(email, pw)
	if r := s.do("DELETE", "/logout", "", "Authorization", "Bearer "+at2); r.StatusCode != 204 {
		t.Fatalf("DELETE /logout by bearer: %d %s", r.StatusCode, r.body)
	}
	if r := s.refresh(rt2); r.StatusCode != 401 {
		t.Fatalf("refresh after bearer logout: %d", r.StatusCode)
	}
	if r := s.do("POST", "/logout?scope=bogus", "", "Authorization", "Bearer "+at2); r.StatusCode != 400 {
		t.Fatalf("bogus scope: %d", r.StatusCode)
	}
}

// The issuer's own Bearer endpoints consult the revocation topic like every
// verifier: an access token revoked by its jti (its session lives on, so
// only the event can tell) is refused by /me, and by logout by Bearer.
func TestMeRejectsRevokedAccessToken(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	if r := s.do("GET", "/me", "", "Authorization", "Bearer "+at); r.StatusCode != 200 {
		t.Fatalf("/me: %d %s", r.StatusCode, r.body)
	}
	if r := s.form("/oauth/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}}); r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
	start := time.Now()
	for {
		r := s.do("GET", "/me", "", "Authorization", "Bearer "+at)
		if r.StatusCode == 401 {
			break
		}
		if r.StatusCode != 200 || time.Since(start) > 5*time.Second {
			t.Fatalf("/me with a revoked access token, %s after the revocation: %d %s", time.Since(start), r.StatusCode, r.body)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("/me refused the revoked access token %s after the revocation", time.Since(start))
	if r := s.do("DELETE", "/logout", "", "Authorization", "Bearer "+at); r.StatusCode != 401 {
		t.Fatalf("logout with the revoked access token: %d %s", r.StatusCode, r.body)
	}
	if r := s.refresh(rt); r.StatusCode != 200 { // the session itself was not revoked
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
}

func TestLogoutScopes(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	var rts []string
	for range 3 {
		_, rt := s.login(email, pw)
		rts = append(rts, rt)
	}
	if r := s.do("POST", "/logout?scope=others", "", "Cookie", "refresh_token="+rts[0]); r.StatusCode != 204 {
		t.Fatalf("logout others: %d %s", r.StatusCode, r.body)
	}
	for i, rt := range rts[1:] {
		if r := s.refresh(rt); r.StatusCode != 401 {
			t.Fatalf("session %d after logout others: %d", i+1, r.StatusCode)
		}
	}
	r := s.refresh(rts[0])
	if r.StatusCode != 200 {
		t.Fatalf("current session after logout others: %d", r.StatusCode)
	}
	cur := r.cookie("refresh_token").Value
	_, other := s.login(email, pw)
	if r := s.do("DELETE", "/logout?scope=global", "", "Cookie", "refresh_token="+cur); r.StatusCode != 204 {
		t.Fatalf("logout global: %d", r.StatusCode)
	}
	for _, rt := range []string{cur, other} {
		if r := s.refresh(rt); r.StatusCode != 401 {
			t.Fatalf("after logout global: %d", r.StatusCode)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	big := `{"email":"x@example.com","password":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"body over 64 KiB", "/register", big, 413},
		{"malformed JSON", "/register", `{"email":`, 400},
		{"not an object", "/login", `["a"]`, 400},
		{"trailing data", "/login", `{"email":"a@example.com","password":"x"} {}`, 400},
		{"operator in email", "/login", `{"email":{"$ne":""},"password":"` + pw + `"}`, 400},
		{"operator in password", "/login", `{"email":"` + email + `","password":{"$gt":""}}`, 400},
		{"number as email", "/register", `{"email":5,"password":"` + pw + `"}`, 400},
		{"empty body", "/login", ``, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("POST", tt.path, tt.body)
			if r.StatusCode != tt.status || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s, want %d problem+json", r.StatusCode, r.body, tt.status)
			}
		})
	}
	t.Run("extra fields never reach a token", func(t *testing.T) {
		e := "extra@example.com"
		r := s.do("POST", "/register", `{"email":"`+e+`","password":"`+pw+`","roles":["admin"],"sub":"root","email_verified":true,"id":"x"}`)
		if r.StatusCode != 201 {
			t.Fatalf("register: %d %s", r.StatusCode, r.body)
		}
		r = s.do("POST", "/login", `{"email":"`+e+`","password":"`+pw+`","roles":["admin"],"sid":"mine","aud":"other"}`)
		c, _ := s.verify(r.json(t)["access_token"].(string))
		if len(c.Roles) != 0 || c.EmailVerified || c.Subject == "root" || c.Subject == "x" || c.SessionID == "mine" {
			t.Fatalf("claims took client input: %+v", c)
		}
	})
	t.Run("foreign origin with cookie", func(t *testing.T) {
		_, rt := s.login(email, pw)
		if r := s.do("POST", "/access_token", "", "Cookie", "refresh_token="+rt, "Origin", "https://evil.example"); r.StatusCode != 403 || r.code() != "forbidden_origin" {
			t.Fatalf("foreign origin: %d %s", r.StatusCode, r.body)
		}
		if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt, "Origin", "https://evil.example"); r.StatusCode != 403 {
			t.Fatalf("foreign origin logout: %d", r.StatusCode)
		}
		if r := s.do("POST", "/access_token", "", "Cookie", "refresh_token="+rt, "Origin", "https://app.example.com"); r.StatusCode != 200 {
			t.Fatalf("allowed origin: %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("unknown route and method", func(t *testing.T) {
		if r := s.do("GET", "/nope", ""); r.StatusCode != 404 || r.code() != "not_found" {
			t.Fatalf("unknown route: %d %s", r.StatusCode, r.body)
		}
		if r := s.do("PUT", "/login", "{}"); r.StatusCode != 405 {
			t.Fatalf("wrong method: %d %s", r.StatusCode, r.body)
		}
	})
}

// Failed logins slow down the network they come from, for that account
// only: after 3 (account-network=3/15m) the next attempt is refused with 429
// and Retry-After, unchecked, even with the right password; another account
// from that network, and the same account from another network, go on.
func TestLoginSlowDownPerAccountAndNetwork(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=100000/1m,account-network=3/15m"})
	email := s.register(pw)
	for i := range 3 {
		if r := s.do("POST", "/login", `{"email":"`+email+`","password":"wrong password!"}`); r.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, r.StatusCode)
		}
	}
	r := s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`)
	if r.StatusCode != 429 || r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt: %d %s Retry-After %q", r.StatusCode, r.body, r.Header.Get("Retry-After"))
	}
	// Another spelling of the address, by the password grant: the same account, the same budget.
	if r := s.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {strings.ToUpper(email)}, "password": {pw}}); r.StatusCode != 429 {
		t.Fatalf("the same account by the password grant: %d %s", r.StatusCode, r.body)
	}
	other := s.register(pw)
	if r := s.do("POST", "/login", `{"email":"`+other+`","password":"`+pw+`"}`); r.StatusCode != 200 {
		t.Fatalf("other account, same network: %d", r.StatusCode)
	}
	if r := s.from("127.0.0.2").do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`); r.StatusCode != 200 {
		t.Fatalf("same account, another network: %d %s", r.StatusCode, r.body)
	}
}

// X-Forwarded-For is believed only from a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=1/1m", "JOTGUARD_TRUSTED_PROXIES": "127.0.0.1/32"})
	for i := range 3 { // each from its own client address behind the proxy
		r := s.do("POST", "/register", `{"email":"`+strings.ToLower(rand.Text())+`@example.com","password":"`+pw+`"}`,
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		if r.StatusCode != 201 {
			t.Fatalf("client %d: %d %s", i, r.StatusCode, r.body)
		}
	}
	u := startIssuer(t, map[string]string{"JOTGUARD_RATE_LIMITS": "credentials=1/1m"})
	u.do("POST", "/register", `{"email":"`+strings.ToLower(rand.Text())+`@example.com","password":"`+pw+`"}`, "X-Forwarded-For", "203.0.113.1")
	if r := u.do("POST", "/register", `{"email":"`+strings.ToLower(rand.Text())+`@example.com","password":"`+pw+`"}`, "X-Forwarded-For", "203.0.113.2"); r.StatusCode != 429 {
		t.Fatalf("untrusted X-Forwarded-For was believed: %d", r.StatusCode)
	}
}

func TestOAuth(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	r := s.form("/oauth/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}})
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("password grant: %d %s", r.StatusCode, r.body)
	}
	m := r.json(t)
	rt, _ := m["refresh_token"].(string)
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(300) || rt == "" {
		t.Fatalf("token response %v", m)
	}
	s.verify(m["access_token"].(string))
	r = s.form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if r.StatusCode != 200 {
		t.Fatalf("refresh grant: %d %s", r.StatusCode, r.body)
	}
	next := r.json(t)["refresh_token"].(string)
	for name, tt := range map[string]struct {
		v    url.Values
		want string
	}{
		"bad password":    {url.Values{"grant_type": {"password"}, "username": {email}, "password": {"wrong one!"}}, "invalid_grant"},
		"unknown refresh": {url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("B", 43)}}, "invalid_grant"},
		"unsupported":     {url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "unsupported_grant_type"},
		"no grant":        {url.Values{}, "invalid_request"},
	} {
		r := s.form("/oauth/token", tt.v)
		if r.StatusCode != 400 || r.json(t)["error"] != tt.want {
			t.Errorf("%s: %d %s, want 400 %s", name, r.StatusCode, r.body, tt.want)
		}
	}
	// The refresh token is read from the body only.
	if r := s.do("POST", "/oauth/token?grant_type=refresh_token&refresh_token="+next, "", "Content-Type", "application/x-www-form-urlencoded"); r.StatusCode != 400 {
		t.Fatalf("query-string grant: %d %s", r.StatusCode, r.body)
	}
	// RFC 7009: unknown tokens are fine; a known refresh token ends its session.
	if r := s.form("/oauth/revoke", url.Values{"token": {"unknown"}}); r.StatusCode != 200 {
		t.Fatalf("revoke unknown: %d %s", r.StatusCode, r.body)
	}
	if r := s.form("/oauth/revoke", url.Values{"token": {next}, "token_type_hint": {"refresh_token"}}); r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
	if r := s.form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}); r.StatusCode != 400 {
		t.Fatalf("refresh after revoke: %d", r.StatusCode)
	}
	if r := s.form("/oauth/revoke", url.Values{}); r.StatusCode != 400 {
		t.Fatalf("revoke without token: %d", r.StatusCode)
	}
}

func TestDiscoveryAndOps(t *testing.T) {
	s := startIssuer(t, nil)
	r := s.do("GET", "/.well-known/jwks.json", "")
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("jwks: %d %v", r.StatusCode, r.Header)
	}
	keys, _ := r.json(t)["keys"].([]any)
	if len(keys) == 0 {
		t.Fatalf("jwks: no keys: %s", r.body)
	}
	for _, k := range keys {
		k := k.(map[string]any)
		if k["kid"] == nil || k["use"] != "sig" || k["alg"] == nil || k["d"] != nil {
			t.Fatalf("jwk %v", k)
		}
	}
	r = s.do("GET", "/public_key", "")
	block, _ := pem.Decode(r.body)
	if r.StatusCode != 200 || block == nil {
		t.Fatalf("public_key: %d %s", r.StatusCode, r.body)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Fatalf("public_key: %v", err)
	}
	m := s.do("GET", "/.well-known/openid-configuration", "").json(t)
	if m["issuer"] != testIssuer || m["jwks_uri"] != testIssuer+"/.well-known/jwks.json" ||
		m["token_endpoint"] != testIssuer+"/oauth/token" || m["revocation_endpoint"] != testIssuer+"/oauth/revoke" {
		t.Fatalf("openid-configuration %v", m)
	}
	if r := s.do("GET", "/healthz", ""); r.StatusCode != 200 {
		t.Fatalf("healthz %d", r.StatusCode)
	}
	if r := s.do("GET", "/openapi.yaml", ""); r.StatusCode != 200 || !bytes.Equal(r.body, httpapi.OpenAPI) {
		t.Fatalf("openapi.yaml: %d, %d bytes", r.StatusCode, len(r.body))
	}
	if r := s.do("GET", "/readyz", ""); r.StatusCode != 200 {
		t.Fatalf("readyz %d %s", r.StatusCode, r.body)
	}
	email := s.register(pw)
	s.login(email, pw)
	r = s.do("GET", "/metrics", "")
	for _, want := range []string{`jotguard_logins_total{outcome="ok"} 1`, `jotguard_http_requests_total{method="POST",route="/register",status="201"} 1`,
		"jotguard_password_hash_queue", "jotguard_revocation_outbox_pending", "jotguard_http_request_duration_seconds"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A saturated hasher answers 503 busy with Retry-After, never a 500, and the
// requests that got a slot succeed.
func TestHashingSaturatedIs503(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_HASH_CONCURRENCY": "1", "JOTGUARD_HASH_QUEUE_WAIT": "1ms",
		"JOTGUARD_ARGON2_MEMORY": "19456", "JOTGUARD_ARGON2_TIME": "2"})
	var created, busy atomic.Int32
	parallel(8, func(i int) {
		r := s.do("POST", "/register", fmt.Sprintf(`{"email":"busy%d@example.com","password":"%s"}`, i, pw))
		switch {
		case r.StatusCode == 201:
			created.Add(1)
		case r.StatusCode == 503 && r.code() == "busy" && r.Header.Get("Retry-After") != "":
			busy.Add(1)
		default:
			t.Errorf("register under saturation: %d %s", r.StatusCode, r.body)
		}
	})
	if created.Load() == 0 || busy.Load() == 0 {
		t.Fatalf("%d created, %d busy; want some of each", created.Load(), busy.Load())
	}
}

func TestSigningAlgorithms(t *testing.T) {
	for _, alg := range []string{"EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			s := startIssuer(t, map[string]string{"JOTGUARD_SIGNING_ALG": alg})
			email := s.register(pw)
			at, _ := s.login(email, pw)
			if _, tok := s.verify(at); tok.Header["alg"] != alg || tok.Header["typ"] != "at+jwt" {
				t.Fatalf("header %v, want alg %s", tok.Header, alg)
			}
			m := s.do("GET", "/.well-known/openid-configuration", "").json(t)
			if algs, _ := m["id_token_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != alg {
				t.Fatalf("discovery algs %v", m["id_token_signing_alg_values_supported"])
			}
		})
	}
}

// Spellings a person can't tell apart from an existing account's address
// or username collide with it (409) or are refused (400): they never
// register a second account that mail, logs and identity headers would
// show as the first.
func TestLookAlikesCollide(t *testing.T) {
	s := startIssuer(t, nil)
	local := "sam" + strings.ToLower(rand.Text()[:8])
	email, user := local+"@example.com", "u"+strings.ToLower(rand.Text()[:8])
	if r := s.do("POST", "/register", fmt.Sprintf(`{"email":%q,"password":%q,"username":%q}`, email, pw, user)); r.StatusCode != 201 {
		t.Fatalf("register: %d %s", r.StatusCode, r.body)
	}
	fullWidth := func(s string) string { // ASCII letters and digits to their full-width forms
		var b strings.Builder
		for _, r := range s {
			b.WriteRune(r - 0x21 + 0xff01)
		}
		return b.String()
	}
	tests := []struct {
		name, email, username, code string
	}{
		{"long s", "\u017f" + local[1:] + "@example.com", "", "email_taken"},
		{"full-width local part", fullWidth(local[:1]) + local[1:] + "@example.com", "", "email_taken"},
		{"full-width domain", local + "@" + fullWidth("e") + "xample.com", "", "email_taken"},
		{"upper case", strings.ToUpper(email), "", "email_taken"},
		{"trailing zero-width space", email + "\u200b", "", "invalid_request"},
		{"zero-width joiner inside", local[:2] + "\u200d" + local[2:] + "@example.com", "", "invalid_request"},
		{"bidi override", "\u202e" + email, "", "invalid_request"},
		{"full-width username", "other-" + email, fullWidth(user), "username_taken"},
		{"upper-case username", "other2-" + email, strings.ToUpper(user), "username_taken"},
		{"Cyrillic a in a username", "other3-" + email, "\u0430" + user, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"email":%q,"password":%q}`, tt.email, pw)
			if tt.username != "" {
				body = fmt.Sprintf(`{"email":%q,"password":%q,"username":%q}`, tt.email, pw, tt.username)
			}
			r := s.do("POST", "/register", body)
			if r.StatusCode == 201 || r.json(t)["code"] != tt.code {
				t.Fatalf("register %+q/%+q: %d %s, want code %s", tt.email, tt.username, r.StatusCode, r.body, tt.code)
			}
		})
	}
	// The look-alikes log in to the one account.
	if r := s.do("POST", "/login", fmt.Sprintf(`{"email":%q,"password":%q}`, "\u017f"+local[1:]+"@"+fullWidth("e")+"xample.com", pw)); r.StatusCode != 200 {
		t.Fatalf("login with a look-alike spelling: %d %s", r.StatusCode, r.body)
	}
}

// A page of another site can't make a browser sign in, register or ask for
// tokens here: a JSON endpoint refuses any other content type (a
// cross-site form or text/plain post needs no CORS preflight), and every
// state-changing request refuses a foreign Origin, or, without one,
// Sec-Fetch-Site: cross-site, cookie or not (login CSRF).
func TestCrossSiteRequestsRefused(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	login := fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}}.Encode()
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"text/plain login", "POST", "/login", login, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"form-encoded login", "POST", "/login", login, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"text/plain register", "POST", "/register", fmt.Sprintf(`{"email":"x-%s","password":%q}`, email, pw), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"login from a foreign origin", "POST", "/login", login, []string{"Origin", "https://evil.example"}, 403, "forbidden_origin"},
		{"login from a null origin", "POST", "/login", login, []string{"Origin", "null"}, 403, "forbidden_origin"},
		{"login cross-site without Origin", "POST", "/login", login, []string{"Sec-Fetch-Site", "cross-site"}, 403, "forbidden_origin"},
		{"register from a foreign origin", "POST", "/register", fmt.Sprintf(`{"email":"y-%s","password":%q}`, email, pw), []string{"Origin", "https://evil.example"}, 403, "forbidden_origin"},
		{"token endpoint cross-site", "POST", "/oauth/token", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"}, 403, "forbidden_origin"},
		{"token endpoint from a foreign origin", "POST", "/oauth/token", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"}, 403, "forbidden_origin"},
		{"login from the allowed origin", "POST", "/login", login, []string{"Origin", "https://app.example.com", "Sec-Fetch-Site", "cross-site"}, 200, ""},
		{"login same-origin", "POST", "/login", login, []string{"Origin", testIssuer, "Sec-Fetch-Site", "same-origin"}, 200, ""},
		{"login with a JSON charset", "POST", "/login", login, []string{"Content-Type", "application/json; charset=utf-8"}, 200, ""},
		{"token endpoint, no browser headers", "POST", "/oauth/token", form, []string{"Content-Type", "application/x-www-form-urlencoded"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(tt.method, tt.path, tt.body, tt.hdr...)
			if r.StatusCode != tt.status || (tt.code != "" && r.json(t)["code"] != tt.code) {
				t.Fatalf("%d %s, want %d %s", r.StatusCode, r.body, tt.status, tt.code)
			}
			if tt.status >= 400 && r.cookie("refresh_token") != nil {
				t.Fatal("a refused request set a refresh cookie")
			}
		})
	}
}
