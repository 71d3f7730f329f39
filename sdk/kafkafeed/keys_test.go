package kafkafeed_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Events read before the Verifier has loaded its keys wait for them: they
// are applied once the JWKS answers, never counted as poison. The feed runs
// as a Verifier's revocation source, the way services wire it.
func TestEventsReadBeforeKeysWaitForThem(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	iss := sdktest.NewIssuer(t)
	iss.SetDown(true) // the issuer is not up yet
	topic := topicName(t)
	createTopic(t, brokers, topic, 2)
	w := newWriter(t, brokers, topic, nil)
	now := time.Now()
	subs := []string{"early-1", "early-2", "early-3"}
	for _, sub := range subs {
		e := revocation.Event{ID: "evt-" + sub, Subject: sub, At: now, Reason: revocation.ReasonLogout}
		write(t, w, record(sub, iss.RevocationSET(t, e), now))
	}

	feed := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: iss.URL, Audience: []string{sdktest.Audience},
		Revocations: feed, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a record read while the keys are missing", func() bool { return feed.Stats().KeyWaits > 0 })
	if v.Ready() == nil {
		t.Fatal("Verifier ready without keys")
	}
	iss.SetDown(false)
	eventually(t, "keys loaded and replay caught up", func() bool { return v.Ready() == nil })
	st := feed.Stats()
	if st.Poison != 0 || st.Applied != uint64(len(subs)) {
		t.Fatalf("Stats = %+v, want %d applied and no poison", st, len(subs))
	}
	for _, sub := range subs {
		c := iss.Claims(sub)
		c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)), jwt.NewNumericDate(now.Add(4*time.Minute))
		if _, err := v.Verify(t.Context(), iss.Mint(t, c)); !errors.Is(err, sdk.ErrRevoked) {
			t.Errorf("%s: a token issued before the revocation: %v, want ErrRevoked", sub, err)
		}
	}
}

// keySet is a JWKS server whose keys a test changes: an issuer rotating.
type keySet struct {
	srv  *httptest.Server
	doc  atomic.Pointer[[]byte]
	keys map[string]*ecdsa.PrivateKey
}

func newKeySet(t *testing.T) *keySet {
	ks := &keySet{keys: map[string]*ecdsa.PrivateKey{}}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*ks.doc.Load())
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

// key makes a key named kid (not published).
func (ks *keySet) key(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks.keys[kid] = k
}

// publish serves these keys from now on.
func (ks *keySet) publish(t *testing.T, kids ...string) {
	var jwks []any
	for _, kid := range kids {
		jwks = append(jwks, sdktest.PublicJWK(kid, &ks.keys[kid].PublicKey))
	}
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	ks.doc.Store(&b)
}

// sign signs e as a SET with the key kid.
func (ks *keySet) sign(t *testing.T, kid string, e revocation.Event) []byte {
	e.Issuer = ks.srv.URL
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, revocation.NewSET(e, []string{sdktest.Audience}))
	tok.Header["typ"], tok.Header["kid"] = revocation.TokenType, kid
	s, err := tok.SignedString(ks.keys[kid])
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// signBatch signs events as one batch with the key kid.
func (ks *keySet) signBatch(t *testing.T, kid string, events ...revocation.Event) []byte {
	raw, err := revocation.SealBatch(revocation.Batch{ID: "batch-" + kid, Issuer: ks.srv.URL,
		Audience: []string{sdktest.Audience}, IssuedAt: time.Now(), Events: events},
		revocation.BatchKey{Alg: "ES256", KID: kid, Sign: func(b []byte) ([]byte, error) {
			return jwt.SigningMethodES256.Sign(string(b), ks.keys[kid])
		}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// An event signed with a key the issuer published after the Verifier's last
// JWKS fetch makes the feed refresh the key set and apply it. An event whose
// key is missing from that fresh key set is poison, and the feed goes on.
// The same holds for a batch, whole.
func TestEventWithNewKeyRefreshesKeySet(t *testing.T) {
	brokers := sharedBroker(t)
	fx := newFixture(t)
	ks := newKeySet(t)
	ks.key(t, "old")
	ks.key(t, "new")
	ks.key(t, "forged")
	ks.publish(t, "old")
	topic := topicName(t)
	createTopic(t, brokers, topic, 1)
	w := newWriter(t, brokers, topic, nil)

	feed := newFeed(t, kafkafeed.Config{Brokers: brokers, Topic: topic, Set: fx.NewSet(time.Now)})
	v, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: ks.srv.URL, Audience: []string{sdktest.Audience},
		Revocations: feed, Logger: testLogger(t)}) // JWKS refreshed every 5 minutes: not during this test
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", func() bool { return v.Ready() == nil })

	ks.publish(t, "old", "new") // a rotation: the new key is published ahead
	now := time.Now()
	ev := func(sub string) revocation.Event {
		return revocation.Event{ID: "evt-" + sub, Subject: sub, At: now, IssuedAt: now, Reason: revocation.ReasonLogout}
	}
	write(t, w,
		record("forged", ks.sign(t, "forged", ev("forged")), now),
		record("rotated", ks.sign(t, "new", ev("rotated")), now),
		record("later", ks.sign(t, "old", ev("later")), now),
		batchRecord(ks.signBatch(t, "forged", ev("forged-1"), ev("forged-2")), now),
		batchRecord(ks.signBatch(t, "new", ev("rotated-1"), ev("rotated-2")), now))
	eventually(t, "all five records handled", func() bool {
		st := feed.Stats()
		return st.Applied+st.Poison == 6
	})
	st := feed.Stats()
	if st.Applied != 4 || st.Poison != 2 || st.Batches != 1 {
		t.Fatalf("Stats = %+v, want the four events of published keys applied (one batch), the forged SET and batch poison", st)
	}
	fx.Issuer = ks.srv.URL
	for _, sub := range []string{"rotated", "later", "rotated-1", "rotated-2"} {
		if !fx.revoked(t, feed, sub, now) {
			t.Errorf("%s: not revoked", sub)
		}
	}
	for _, sub := range []string{"forged", "forged-1", "forged-2"} {
		if fx.revoked(t, feed, sub, now) {
			t.Errorf("%s: revoked by a forged record", sub)
		}
	}
}
