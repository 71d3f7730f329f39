package kafkaevents

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// memClaims is Claims in memory, as mongostore.Outbox keeps them (its
// suite runs against the dev stack's MongoDB).
type memClaims struct {
	mu     sync.Mutex
	claims map[string]memClaim
}

type memClaim struct {
	owner   string
	until   time.Time
	settled bool
}

func newClaims() *memClaims { return &memClaims{claims: map[string]memClaim{}} }

func (m *memClaims) Claim(_ context.Context, owner string, now, until time.Time, keys ...string) (held, settled []string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		c, ok := m.claims[k]
		switch {
		case !ok || c.until.Before(now):
			m.claims[k] = memClaim{owner: owner, until: until}
			held = append(held, k)
		case c.owner == owner:
			held = append(held, k)
		case c.settled:
			settled = append(settled, k)
		}
	}
	return held, settled, nil
}

func (m *memClaims) Settle(_ context.Context, owner string, until time.Time, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if c := m.claims[k]; c.owner == owner {
			m.claims[k] = memClaim{owner: owner, until: until, settled: true}
		}
	}
	return nil
}

func (m *memClaims) Unclaim(_ context.Context, owner string, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if m.claims[k].owner == owner {
			delete(m.claims, k)
		}
	}
	return nil
}

func (m *memClaims) ExpireClaims(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.claims {
		if c.until.Before(now) {
			delete(m.claims, k)
		}
	}
	return nil
}

// TestPublishRevokesEachSessionAndTokenOnce: 30 Publish calls at once, then
// 30 more, for one session give one record, and so for one token; user-wide
// events are all published; an event that could not be delivered leaves
// its session to be revoked by the next call, and a claim whose owner died
// is taken over once it runs out.
func TestPublishRevokesEachSessionAndTokenOnce(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	signer := newSigner(t)
	claims := newClaims()
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, Claims: claims}, signer, newOutbox(t))
	since := time.Now().Add(-2 * time.Second)
	user := "user-" + rand.Text()
	session := func(sid string) revocation.Event {
		e := newEvent(user, revocation.ReasonLogout)
		e.ID, e.SessionID = "", sid // a new event id each time, as the Service makes
		return e
	}
	token := func(jti string) revocation.Event {
		e := session("")
		e.TokenID = jti
		return e
	}
	everyone := func() revocation.Event { return session("") }

	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if err := p.Publish(t.Context(), session("s1"), token("t1")); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	for range 30 {
		if err := p.Publish(t.Context(), session("s1"), token("t1")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := p.Publish(t.Context(), everyone()); err != nil {
			t.Fatal(err)
		}
	}

	// Kafka and the outbox down: the event is not delivered, its claim is
	// given up, and the next Publish (outbox back) delivers it.
	down := newPublisher(t, Config{Brokers: []string{closedPort(t)}, Topic: topic, AckTimeout: 200 * time.Millisecond,
		Claims: claims}, signer, downOutbox{})
	if err := down.Publish(t.Context(), session("s2")); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Publish with Kafka and the outbox down: %v", err)
	}
	if err := p.Publish(t.Context(), session("s2")); err != nil {
		t.Fatal(err)
	}
	// A publisher that died after claiming s3: its claim runs out, then
	// s3 is revoked.
	now := time.Now()
	if _, _, err := claims.Claim(t.Context(), "dead", now.Add(-time.Minute), now.Add(-time.Second), claimKey(session("s3"))); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), session("s3")); err != nil {
		t.Fatal(err)
	}

	got := map[string]int{}
	events, _ := eventsOf(t, signer.JWKS(), readSince(t, brokers, topic, since), user)
	for _, e := range events {
		got["sid="+e.SessionID+" jti="+e.TokenID]++
	}
	want := map[string]int{"sid=s1 jti=": 1, "sid= jti=t1": 1, "sid= jti=": 2, "sid=s2 jti=": 1, "sid=s3 jti=": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("records %v, want %v", got, want)
			break
		}
	}
}
