package app_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// With MongoDB gone, user requests answer 503 with Retry-After while the
// JWKS is still served from memory; they work again once MongoDB is back.
// A refresh within JOTGUARD_USER_RECHECK of the last read of the user needs
// no MongoDB: it succeeds from the session's copy of the user. With
// JOTGUARD_USER_RECHECK=0 every refresh reads the user, and answers 503.
func TestMongoDownThenBack(t *testing.T) {
	m := sdktest.StartDevstack(t, "mongo")
	mongoURI := "mongodb://" + m.Addr() + "/"
	s := startIssuer(t, map[string]string{"JOTGUARD_MONGO_URI": mongoURI})
	email := s.register(pw)
	_, rt := s.login(email, pw)
	every := startIssuer(t, map[string]string{"JOTGUARD_MONGO_URI": mongoURI, "JOTGUARD_USER_RECHECK": "0"})
	everyEmail := every.register(pw)
	_, everyRT := every.login(everyEmail, pw)

	m.Stop()
	r := s.refresh(rt)
	if r.StatusCode != 200 {
		t.Errorf("refresh within the recheck window with MongoDB down: %d %s, want 200", r.StatusCode, r.body)
	} else if u, _ := r.json(t)["user"].(map[string]any); u["email"] != email {
		t.Errorf("refresh with MongoDB down answered user %v, want %s", u, email)
	}
	r = every.refresh(everyRT)
	if r.StatusCode != 503 || r.code() != "unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("refresh with JOTGUARD_USER_RECHECK=0 and MongoDB down: %d %s, want 503 unavailable with Retry-After", r.StatusCode, r.body)
	}
	for name, r := range map[string]resp{
		"register": s.do("POST", "/register", `{"email":"new@example.com","password":"`+pw+`"}`),
		"login":    s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`),
		"readyz":   s.do("GET", "/readyz", ""),
	} {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s with MongoDB down: %d %s, want 503 with Retry-After", name, r.StatusCode, r.body)
		}
	}
	if r := s.do("GET", "/.well-known/jwks.json", ""); r.StatusCode != 200 {
		t.Errorf("jwks with MongoDB down: %d", r.StatusCode)
	}
	m.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`)
		if r.StatusCode == 200 {
			break
		}
		if r.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("login after MongoDB came back: %d %s", r.StatusCode, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
