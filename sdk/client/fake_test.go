package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/client"
)

// fakeIssuer implements the documented shapes of the issuer API: statuses, the
// refresh_token cookie (read before the body, as the issuer does), rotation,
// problem+json. issuer_test.go runs the client against bin/issuer itself;
// the fake stays for what the real one can't be made to answer cheaply (a
// 503, a body that is not JSON, access tokens revoked on demand) and for
// runs without a dev stack.
type fakeIssuer struct {
	*httptest.Server

	mu       sync.Mutex
	users    map[string]client.User // by email
	pass     map[string]string      // email → password
	access   map[string]string      // access token → email
	refresh  map[string]string      // current refresh token → email
	seq      int
	loginTTL int64 // expires_in of a login answer
	down     bool  // every call gets 503

	refreshCalls atomic.Int64
	apiCalls     atomic.Int64
	lastLogout   atomic.Value // the scope query of the last logout
	refreshDelay time.Duration
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	f := &fakeIssuer{users: map[string]client.User{}, pass: map[string]string{},
		access: map[string]string{}, refresh: map[string]string{}, loginTTL: 300}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /register", f.register)
	mux.HandleFunc("POST /login", f.login)
	mux.HandleFunc("POST /access_token", f.accessToken)
	mux.HandleFunc("POST /logout", f.logout)
	mux.HandleFunc("GET /me", f.me)
	mux.HandleFunc("/api/", f.api)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		f.mu.Unlock()
		if down {
			w.Header().Set("Retry-After", "7")
			problem(w, http.StatusServiceUnavailable, "unavailable", "a backend is unavailable", nil)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func problem(w http.ResponseWriter, status int, code, detail string, fields []client.FieldError) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "https://jotguard.dev/problems/" + code,
		"title": http.StatusText(status), "status": status, "detail": detail, "code": code, "errors": fields})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeIssuer) register(w http.ResponseWriter, r *http.Request) {
	var in client.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, 400, "malformed_body", "malformed JSON", nil)
		return
	}
	var fields []client.FieldError
	if !strings.Contains(in.Email, "@") {
		fields = append(fields, client.FieldError{Field: "email", Reason: "is not an email address"})
	}
	if len(in.Password) < 8 {
		fields = append(fields, client.FieldError{Field: "password", Reason: "must be 8 to 128 characters"})
	}
	if fields != nil {
		problem(w, 400, client.CodeInvalidRequest, "one or more fields are invalid", fields)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if _, ok := f.users[email]; ok {
		problem(w, 409, "email_taken", "email already registered", nil)
		return
	}
	f.seq++
	u := client.User{ID: fmt.Sprint("u", f.seq), Email: email, Username: in.Username,
		FirstName: in.FirstName, LastName: in.LastName, Roles: []string{"user"}}
	f.users[email], f.pass[email] = u, in.Password
	writeJSON(w, http.StatusCreated, u)
}

// issue answers a login or refresh: body, Authorization header, cookie.
// Callers hold f.mu.
func (f *fakeIssuer) issue(w http.ResponseWriter, email string, ttl int64) {
	f.seq++
	at, rt := fmt.Sprint("at-", f.seq), fmt.Sprint("rt-", f.seq)
	f.access[at], f.refresh[rt] = email, email
	u := f.users[email]
	w.Header().Set("Authorization", "Bearer "+at)
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{Name: "refresh_token", Value: rt, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, Path: "/", MaxAge: 2419200})
	writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer",
		"expires_in": ttl, "user": u})
}

func (f *fakeIssuer) login(w http.ResponseWriter, r *http.Request) {
	var in client.LoginRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		problem(w, 400, "malformed_body", "malformed JSON", nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	email := strings.ToLower(in.Email + in.Identifier)
	if in.Username != "" {
		for e, u := range f.users {
			if u.Username == in.Username {
				email = e
			}
		}
	}
	if p, ok := f.pass[email]; !ok || p != in.Password {
		problem(w, 401, "invalid_credentials", "invalid credentials", nil)
		return
	}
	f.issue(w, email, f.loginTTL)
}

func (f *fakeIssuer) accessToken(w http.ResponseWriter, r *http.Request) {
	f.refreshCalls.Add(1)
	time.Sleep(f.refreshDelay) // widens the window in which racing callers could refresh twice
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if ck, err := r.Cookie("refresh_token"); err == nil && ck.Value != "" {
		in.RefreshToken = ck.Value // the issuer reads the cookie first
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	email, ok := f.refresh[in.RefreshToken]
	if !ok {
		problem(w, 401, "invalid_refresh_token", "invalid refresh token", nil)
		return
	}
	delete(f.refresh, in.RefreshToken) // rotation: the old one dies
	f.issue(w, email, 3600)
}

func (f *fakeIssuer) logout(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if ck, err := r.Cookie("refresh_token"); err == nil && ck.Value != "" {
		in.RefreshToken = ck.Value
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.refresh[in.RefreshToken]; !ok {
		problem(w, 401, "invalid_refresh_token", "invalid refresh token", nil)
		return
	}
	delete(f.refresh, in.RefreshToken)
	f.lastLogout.Store(r.URL.Query().Get("scope"))
	http.SetCookie(w, &http.Cookie{Name: "refresh_token", Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// bearer returns the user of the request's access token.
func (f *fakeIssuer) bearer(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	email, ok := f.access[tok]
	return email, ok
}

func (f *fakeIssuer) me(w http.ResponseWriter, r *http.Request) {
	email, ok := f.bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		problem(w, 401, "invalid_token", "invalid access token", nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.users[email])
}

// api is a protected resource that echoes the token and the body it got.
func (f *fakeIssuer) api(w http.ResponseWriter, r *http.Request) {
	f.apiCalls.Add(1)
	if _, ok := f.bearer(r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body strings.Builder
	_, _ = fmt.Fprint(&body, r.Header.Get("Authorization"), "|")
	b, _ := io.ReadAll(r.Body)
	body.Write(b)
	_, _ = w.Write([]byte(body.String()))
}

// revokeAccess makes every issued access token invalid (as a key rotation
// or revocation would), so the next call gets 401.
func (f *fakeIssuer) revokeAccess() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.access)
}

func (f *fakeIssuer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}
