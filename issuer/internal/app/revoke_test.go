package app_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/sdk/revocation"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Revoking what is already revoked emits nothing new: a token of
// an ended session, or an access token already revoked, mints no event
// however often it is sent, one call after another or 30 at once, and
// whether or not the issuer's own revocation feed has seen the first event
// yet (here it has not: Kafka is down and the events wait in the outbox).
func TestRevokingTheRevokedEmitsNothing(t *testing.T) {
	s, b := startIssuerWithBroker(t, map[string]string{"JOTGUARD_KAFKA_ACK_TIMEOUT": "1s",
		"JOTGUARD_REFRESH_REUSE_GRACE": "1s"})
	since := time.Now().Add(-2 * time.Second)
	const n = 30

	// Each case's user ends one session (want: that session's event, or
	// that token's) and then sends the dead tokens n times, one after
	// another and n at once.
	type user struct{ sub, sid, at, rt string }
	newUser := func() user {
		at, rt := s.login(s.register(pw), pw)
		c, _ := s.verify(at)
		return user{c.Subject, c.SessionID, at, rt}
	}
	repeat := func(name string, f func() resp) {
		t.Helper()
		for range n {
			if r := f(); r.StatusCode >= 500 {
				t.Fatalf("%s: %d %s", name, r.StatusCode, r.body)
			}
		}
		parallel(n, func(int) {
			if r := f(); r.StatusCode >= 500 {
				t.Errorf("%s: %d %s", name, r.StatusCode, r.body)
			}
		})
	}
	bearer := func(u user, scope string) func() resp {
		return func() resp { return s.do("POST", "/logout?scope="+scope, "", "Authorization", "Bearer "+u.at) }
	}
	revoke := func(tok, hint string) func() resp {
		return func() resp { return s.form("/oauth/revoke", url.Values{"token": {tok}, "token_type_hint": {hint}}) }
	}
	cookie := func(u user) func() resp {
		return func() resp { return s.do("POST", "/logout", "", "Cookie", "refresh_token="+u.rt) }
	}
	everyPath := func(u user) {
		t.Helper()
		for _, scope := range []string{"local", "global", "others"} {
			repeat("logout by Bearer, scope "+scope, bearer(u, scope))
		}
		repeat("revoke the access token", revoke(u.at, "access_token"))
		repeat("revoke the refresh token", revoke(u.rt, "refresh_token"))
		repeat("logout by refresh token", cookie(u))
		repeat("refresh", func() resp { return s.refresh(u.rt) })
	}

	b.Stop()
	want := map[string]int{} // sub → events
	// Logged out by its refresh token.
	a := newUser()
	if r := cookie(a)(); r.StatusCode != 204 {
		t.Fatalf("logout: %d %s", r.StatusCode, r.body)
	}
	everyPath(a)
	want[a.sub] = 1
	// Its refresh token reused after the grace window.
	c := newUser()
	if r := s.refresh(c.rt); r.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	time.Sleep(1500 * time.Millisecond)
	if r := s.refresh(c.rt); r.StatusCode != 401 {
		t.Fatalf("reuse: %d %s", r.StatusCode, r.body)
	}
	everyPath(c)
	want[c.sub] = 1
	// The access token revoked, its session alive: that token's event, and
	// one for the session, which the first logout by Bearer ends (the
	// issuer has not seen the token's event on the topic yet: it takes the
	// token as verifiers do).
	d := newUser()
	if r := revoke(d.at, "access_token")(); r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
	}
	repeat("revoke the access token", revoke(d.at, "access_token"))
	everyPath(d)
	want[d.sub] = 2
	// Live tokens sent n times at once: the first call ends the session.
	for _, end := range []func(u user) func() resp{
		func(u user) func() resp { return bearer(u, "local") },
		func(u user) func() resp { return bearer(u, "global") },
		func(u user) func() resp { return revoke(u.rt, "refresh_token") },
		cookie,
	} {
		u := newUser()
		parallel(n, func(int) { end(u)() })
		everyPath(u)
		want[u.sub] = 1
	}

	b.Restart()
	waitOutboxEmpty(t, s.cfg)
	for sub, n := range want {
		if got := s.events(since, sub); len(got) != n {
			t.Errorf("user %s: %d events on the topic, want %d: %v", sub, len(got), n, eventCounts(got))
		}
	}

	// Kafka up, the issuer's feed current: still nothing new.
	e := newUser()
	if r := cookie(e)(); r.StatusCode != 204 {
		t.Fatalf("logout: %d %s", r.StatusCode, r.body)
	}
	s.waitEvents(since, e.sub, map[string]string{e.sid: revocation.ReasonLogout})
	everyPath(e)
	if got := s.events(since, e.sub); len(got) != 1 {
		t.Errorf("Kafka up: %d events of the logged-out user, want 1: %v", len(got), eventCounts(got))
	}
}

// eventCounts counts events by reason and by what they revoke.
func eventCounts(evs []revocation.Event) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		k := e.Reason + " sid=" + e.SessionID
		if e.TokenID != "" {
			k = e.Reason + " jti=" + e.TokenID
		}
		out[k]++
	}
	return out
}

// waitOutboxEmpty waits until the relay emptied the revocation outbox of
// cfg's database.
func waitOutboxEmpty(t *testing.T, cfg config.Config) {
	t.Helper()
	coll := issuerDB(t, cfg).Collection(mongostore.RevocationOutbox)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := coll.CountDocuments(t.Context(), bson.D{})
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation outbox: %d events after 30 s (%v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
