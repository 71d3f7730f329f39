package app_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// With MongoDB gone, user requests answer 503 with Retry-After while the
// JWKS is still served from memory; they work again once MongoDB is back.
func TestMongoDownThenBack(t *testing.T) {
	m := sdktest.StartDevstack(t, "mongo")
	s := startIssuer(t, map[string]string{"JOTGUARD_MONGO_URI": "mongodb://" + m.Addr() + "/"})
	email := s.register(pw)
	s.login(email, pw)

	m.Stop()
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
