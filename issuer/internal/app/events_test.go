package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/testenv"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/segmentio/kafka-go"
)

// events reads every partition of the revocation topic from since, verifies
// each SET against the issuer's served JWKS, and returns the events of sub.
func (s *issuer) events(since time.Time, sub string) []revocation.Event {
	s.t.Helper()
	d, err := s.cfg.Kafka.Dialer("issuer-test") // the issuer's own TLS and SASL settings
	if err != nil {
		s.t.Fatal(err)
	}
	return topicEvents(s.t, d, s.cfg.KafkaBrokers, s.cfg.RevocationTopic, s.keys(), since, sub)
}

// topicEvents reads every partition of topic from since, verifies each
// record (a batch, or a SET) against keys, and returns the events of sub.
func topicEvents(t *testing.T, d *kafka.Dialer, brokers []string, topic string, keys sdk.KeySource, since time.Time, sub string) []revocation.Event {
	t.Helper()
	v := revocation.NewRecordVerifier(sdk.EventTrust{Keys: keys, Issuer: testIssuer, Audience: []string{"jotguard"}})
	var out []revocation.Event
	for _, m := range topicRecords(t, d, brokers, topic, since, sub) {
		out = append(out, recordEvents(t, v, m, sub)...)
	}
	return out
}

// topicRecords reads every partition of topic from since and returns the
// records that may hold events of sub: batches (no key), and SETs keyed by
// sub.
func topicRecords(t *testing.T, d *kafka.Dialer, brokers []string, topic string, since time.Time, sub string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	_ = conn.Close()
	if err != nil {
		return nil // topic not created yet
	}
	var out []kafka.Message
	for _, p := range parts {
		leader, err := d.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatalf("kafka leader: %v", err)
		}
		end, err := leader.ReadLastOffset()
		_ = leader.Close()
		if err != nil {
			t.Fatalf("kafka end offset: %v", err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 200 * time.Millisecond, Dialer: d})
		if err := r.SetOffsetAt(ctx, since); err != nil {
			_ = r.Close()
			t.Fatalf("kafka seek: %v", err)
		}
		for r.Offset() >= 0 && r.Offset() < end {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("kafka read: %v", err)
			}
			if len(m.Key) == 0 || string(m.Key) == sub { // a batch, or a SET of sub's
				out = append(out, m)
			}
			if m.Offset+1 >= end {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// recordEvents verifies one record and returns its events of sub: a batch
// (no key) whose events name their user, or a SET keyed by its user.
func recordEvents(t *testing.T, v *revocation.RecordVerifier, m kafka.Message, sub string) []revocation.Event {
	t.Helper()
	ct := ""
	for _, h := range m.Headers {
		if h.Key == "content-type" {
			ct = string(h.Value)
		}
	}
	events, err := v.Verify(t.Context(), m.Value)
	switch {
	case revocation.IsBatch(m.Value) && errors.Is(err, sdk.ErrUnknownKey):
		return nil // another test's issuer, on the shared topic
	case err != nil:
		t.Fatalf("a record of the topic does not verify: %v", err)
	}
	if want := map[bool]string{true: revocation.BatchContentType, false: revocation.ContentType}[revocation.IsBatch(m.Value)]; ct != want {
		t.Fatalf("record content-type %q, want %q", ct, want)
	}
	var out []revocation.Event
	for _, e := range events {
		// A jwt_id SET names no user; its record key does.
		if e.Subject == sub || e.Subject == "" && e.TokenID != "" && string(m.Key) == sub {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents polls until sub's events name every sid in want (sid → reason).
func (s *issuer) waitEvents(since time.Time, sub string, want map[string]string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]string{}
		for _, e := range s.events(since, sub) {
			got[e.SessionID] = e.Reason
		}
		missing := []string{}
		for sid, reason := range want {
			if got[sid] != reason {
				missing = append(missing, sid+"="+reason+" (got "+got[sid]+")")
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("revocation events missing: %s", strings.Join(missing, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRevocationEvents(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_REFRESH_REUSE_GRACE": "1s"})
	since := time.Now().Add(-2 * time.Second)
	email := s.register(pw)
	type sess struct{ at, rt, sid, sub string }
	login := func() sess {
		at, rt := s.login(email, pw)
		c, _ := s.verify(at)
		return sess{at, rt, c.SessionID, c.Subject}
	}
	a, b, c, d := login(), login(), login(), login()
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+a.rt); r.StatusCode != 204 {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	if r := s.do("POST", "/logout?scope=others", "", "Authorization", "Bearer "+b.at); r.StatusCode != 204 {
		t.Fatalf("logout others: %d", r.StatusCode)
	}
	// b is the one left: a refresh token rotated, reused after the grace window.
	r := s.refresh(b.rt)
	if r.StatusCode != 200 {
		t.Fatalf("refresh: %d", r.StatusCode)
	}
	time.Sleep(2 * time.Second)
	if r := s.refresh(b.rt); r.StatusCode != 401 || r.code() != "invalid_refresh_token" {
		t.Fatalf("reuse after grace: %d %s", r.StatusCode, r.body)
	}
	if r2 := s.refresh(r.cookie("refresh_token").Value); r2.StatusCode != 401 {
		t.Fatalf("successor after reuse: %d, want the session revoked", r2.StatusCode)
	}
	s.waitEvents(since, a.sub, map[string]string{
		a.sid: revocation.ReasonLogout,
		c.sid: revocation.ReasonLogoutGlobal, d.sid: revocation.ReasonLogoutGlobal,
		b.sid: revocation.ReasonRefreshReuse,
	})
	for _, e := range s.events(since, a.sub) {
		if e.ID == "" || e.At.IsZero() || e.Issuer != testIssuer || e.TxnID == "" {
			t.Fatalf("event %+v lacks jti, timestamp, iss or txn", e)
		}
	}
}

// A thief who rotates a stolen refresh token many times cannot outrun reuse
// detection: the victim's later use of the original token still revokes the
// session, the thief's current token with it, and emits the event.
func TestRefreshReuseAfterManyRotations(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_REFRESH_REUSE_GRACE": "500ms"})
	since := time.Now().Add(-2 * time.Second)
	email := s.register(pw)
	at, original := s.login(email, pw)
	c, _ := s.verify(at)
	thief := original
	for i := range 25 {
		r := s.refresh(thief)
		if r.StatusCode != 200 {
			t.Fatalf("thief's rotation %d: %d %s", i, r.StatusCode, r.body)
		}
		thief = r.cookie("refresh_token").Value
	}
	time.Sleep(time.Second) // past the grace window of every rotation
	if r := s.refresh(original); r.StatusCode != 401 || r.code() != "invalid_refresh_token" {
		t.Fatalf("victim's original token after 25 rotations: %d %s", r.StatusCode, r.body)
	}
	if r := s.refresh(thief); r.StatusCode != 401 || r.code() != "invalid_refresh_token" {
		t.Fatalf("thief's current token after the reuse: %d %s, want the session revoked", r.StatusCode, r.body)
	}
	s.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonRefreshReuse})
}

// With JOTGUARD_SET_TOPIC, a logout reaches the verifiers' topic as a
// batch, and the SET topic as one signed SET, keyed by the user: the
// standard feed for receivers outside jotguard.
func TestSETTopic(t *testing.T) {
	_, setTopic := testenv.KafkaTopic(t, "sets")
	s := startIssuer(t, map[string]string{"JOTGUARD_SET_TOPIC": setTopic})
	since := time.Now().Add(-2 * time.Second)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	claims, _ := s.verify(at)
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 204 {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	s.waitEvents(since, claims.Subject, map[string]string{claims.SessionID: revocation.ReasonLogout})
	d, err := s.cfg.Kafka.Dialer("issuer-test")
	if err != nil {
		t.Fatal(err)
	}
	var sets []kafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(sets) == 0 && time.Now().Before(deadline) {
		sets = topicRecords(t, d, s.cfg.KafkaBrokers, setTopic, since, claims.Subject)
		time.Sleep(100 * time.Millisecond)
	}
	if len(sets) != 1 || string(sets[0].Key) != claims.Subject || revocation.IsBatch(sets[0].Value) {
		t.Fatalf("%d records on the SET topic, want one SET keyed %s", len(sets), claims.Subject)
	}
	e, err := revocation.NewSETVerifier(sdk.EventTrust{Keys: s.keys(), Issuer: testIssuer, Audience: []string{"jotguard"}}).
		Verify(t.Context(), sets[0].Value)
	if err != nil || e.SessionID != claims.SessionID || e.Reason != revocation.ReasonLogout {
		t.Fatalf("the SET: %+v, %v; want the session's logout", e, err)
	}
}
