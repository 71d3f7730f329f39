package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"golang.org/x/time/rate"
)

// newStore returns an empty key store: the replicas of a test share it as
// they share a database. storetest checks that mongostore behaves the same.
func newStore(*testing.T) *memstore.Keys { return memstore.NewKeys() }

// stored returns the keys in store.
func stored(t *testing.T, store auth.KeyStore) []auth.SigningKey {
	t.Helper()
	ks, err := store.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newManager(t *testing.T, store auth.KeyStore, cfg Config) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	m, err := NewManager(t.Context(), store, cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// verify checks raw against a JWKS the way a verifier does: keyfunc over
// the JWKS JSON, the expected alg only, typ checked.
func verify(t *testing.T, jwks []byte, raw, alg string, now time.Time) (*jwt.Token, error) {
	t.Helper()
	kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(jwks))
	if err != nil {
		t.Fatalf("parse JWKS %s: %v", jwks, err)
	}
	return jwt.Parse(raw, kf.Keyfunc, jwt.WithValidMethods([]string{alg}),
		jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired())
}

func claimsAt(now time.Time, ttl time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Issuer: "http://issuer.test", Subject: "user-1",
		Audience: jwt.ClaimStrings{"jotguard"}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}
}

func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid, Use, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS %s: %v", jwks, err)
	}
	var out []string
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Alg == "" {
			t.Errorf("JWK %s: use %q alg %q, want sig and an alg", k.Kid, k.Use, k.Alg)
		}
		out = append(out, k.Kid)
	}
	return out
}

func TestSignVerifiesAgainstJWKS(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			m := newManager(t, newStore(t), Config{Alg: alg})
			now := time.Now()
			raw, err := m.Sign(t.Context(), "at+jwt", claimsAt(now, 5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := verify(t, m.JWKS(), raw, alg, now)
			if err != nil {
				t.Fatalf("token does not verify against JWKS() %s: %v", m.JWKS(), err)
			}
			ks := kids(t, m.JWKS())
			if tok.Header["typ"] != "at+jwt" || tok.Header["alg"] != alg || len(ks) != 1 || tok.Header["kid"] != ks[0] {
				t.Errorf("header %v, JWKS kids %v", tok.Header, ks)
			}
			if got := m.Algorithms(); !slices.Equal(got, []string{alg}) {
				t.Errorf("Algorithms() = %v", got)
			}
			if err := m.Ready(); err != nil {
				t.Errorf("Ready() = %v", err)
			}
			// The PEM is the same public key.
			block, _ := pem.Decode(m.PublicKeyPEM())
			if block == nil || block.Type != "PUBLIC KEY" {
				t.Fatalf("PublicKeyPEM() = %q", m.PublicKeyPEM())
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{alg})); err != nil {
				t.Errorf("token does not verify against PublicKeyPEM(): %v", err)
			}
			// A tampered token does not verify.
			parts := strings.Split(raw, ".")
			forged := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
			if _, err := verify(t, m.JWKS(), forged, alg, now); err == nil {
				t.Error("a tampered token verified")
			}
			// A revocation batch it signs verifies against the JWKS too.
			bk, err := m.BatchKey()
			if err != nil || bk.Alg != alg || bk.KID != ks[0] {
				t.Fatalf("BatchKey() = %s %s, %v; want %s, the JWKS kid", bk.Alg, bk.KID, err, alg)
			}
			batch, err := revocation.SealBatch(revocation.Batch{ID: "b", Issuer: "https://issuer.test", Audience: []string{"jotguard"},
				IssuedAt: now, Events: []revocation.Event{{ID: "e", Subject: "alice", At: now}}}, bk)
			if err != nil {
				t.Fatal(err)
			}
			bv := revocation.NewBatchVerifier(sdk.EventTrust{Keys: sdk.NewLocalKeys(m.JWKS), Issuer: "https://issuer.test",
				Audience: []string{"jotguard"}, Algorithms: []string{alg}})
			if b, err := bv.Verify(t.Context(), batch); err != nil || len(b.Events) != 1 || b.Events[0].Subject != "alice" {
				t.Errorf("the batch does not verify against JWKS(): %+v, %v", b, err)
			}
		})
	}
}

// A Manager without a loaded key cannot sign, and says it is unavailable
// (503), not an unknown error (500).
func TestSignWithoutKeyIsUnavailable(t *testing.T) {
	var m Manager
	_, err := m.Sign(t.Context(), "at+jwt", claimsAt(time.Now(), time.Minute))
	if !errors.Is(err, ErrNoKey) || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Sign without a key: %v, want ErrNoKey and auth.ErrUnavailable", err)
	}
	if _, err := m.BatchKey(); !errors.Is(err, ErrNoKey) || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("BatchKey without a key: %v, want ErrNoKey and auth.ErrUnavailable", err)
	}
}

func TestBadConfig(t *testing.T) {
	store := newStore(t)
	if _, err := NewManager(t.Context(), store, Config{Alg: "HS256", Logger: quiet()}); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("HS256: err = %v, want ErrUnsupportedAlg", err)
	}
	if _, err := NewManager(t.Context(), store, Config{EncryptionKey: []byte("short"), Logger: quiet()}); !errors.Is(err, ErrEncryptionKey) {
		t.Errorf("5-byte encryption key: err = %v, want ErrEncryptionKey", err)
	}
}

func TestReplicasShareOneKey(t *testing.T) {
	store := newStore(t)
	m1 := newManager(t, store, Config{})
	m2 := newManager(t, store, Config{})
	if a, b := kids(t, m1.JWKS()), kids(t, m2.JWKS()); !slices.Equal(a, b) || len(a) != 1 {
		t.Fatalf("replica JWKS kids %v and %v, want one shared key", a, b)
	}
	now := time.Now()
	raw, err := m1.Sign(t.Context(), "at+jwt", claimsAt(now, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, m2.JWKS(), raw, AlgES256, now); err != nil {
		t.Errorf("replica 1's token does not verify with replica 2's JWKS: %v", err)
	}
}

func TestConcurrentStartCreatesOneKey(t *testing.T) {
	store := newStore(t)
	const n = 6
	jwks := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := NewManager(t.Context(), store, Config{Logger: quiet()})
			if err != nil {
				t.Errorf("NewManager %d: %v", i, err)
				return
			}
			jwks[i] = m.JWKS()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if count := len(stored(t, store)); count != 1 {
		t.Errorf("%d keys stored after %d concurrent starts, want 1", count, n)
	}
	for i := range n {
		if !bytes.Equal(jwks[i], jwks[0]) {
			t.Errorf("manager %d serves %s, manager 0 %s", i, jwks[i], jwks[0])
		}
	}
}

func TestRotationPublishesAheadAndRetainsUntilExpiry(t *testing.T) {
	store := newStore(t)
	clk := newClock()
	const ahead, retain = 10 * time.Minute, 6 * time.Minute
	cfg := Config{PublishAhead: ahead, Retain: retain, Now: clk.Now}
	m := newManager(t, store, cfg)
	replica := newManager(t, store, cfg)
	oldKid := kids(t, m.JWKS())[0]

	info, err := m.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State != StatePending || !info.NotBefore.Equal(clk.Now().Truncate(time.Millisecond).Add(ahead)) {
		t.Errorf("Rotate() = %+v, want a pending key signing from now+%v", info, ahead)
	}
	if err := replica.reload(t.Context()); err != nil { // what Run does every ReloadEvery
		t.Fatal(err)
	}
	for name, mm := range map[string]*Manager{"rotating": m, "replica": replica} {
		if got := kids(t, mm.JWKS()); !slices.Equal(got, []string{oldKid, info.KID}) {
			t.Errorf("%s JWKS kids %v, want the old and the pending key", name, got)
		}
		raw, err := mm.Sign(t.Context(), "at+jwt", claimsAt(clk.Now(), time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if tok, _ := verify(t, mm.JWKS(), raw, AlgES256, clk.Now()); tok == nil || tok.Header["kid"] != oldKid {
			t.Errorf("%s signs with a pending key before its not_before", name)
		}
	}
	list, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].State != StateActive || list[1].State != StatePending ||
		list[0].RetireAt == nil || !list[0].RetireAt.Equal(info.NotBefore) ||
		list[0].ExpiresAt == nil || !list[0].ExpiresAt.Equal(info.NotBefore.Add(retain)) {
		t.Errorf("List() = %+v", list)
	}

	// The last token of the old key, signed just before the switch.
	clk.Advance(ahead - time.Second)
	lastOld, err := replica.Sign(t.Context(), "at+jwt", claimsAt(clk.Now(), retain))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // the new key signs now, on every replica, without a reload
	for name, mm := range map[string]*Manager{"rotating": m, "replica": replica} {
		raw, err := mm.Sign(t.Context(), "at+jwt", claimsAt(clk.Now(), time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := verify(t, mm.JWKS(), raw, AlgES256, clk.Now()); err != nil || tok.Header["kid"] != info.KID {
			t.Errorf("%s after not_before: err %v, want a token of the new key", name, err)
		}
		if !bytes.Contains(mm.PublicKeyPEM(), pemOfKid(t, mm, info.KID)) {
			t.Errorf("%s PublicKeyPEM() is not the new key", name)
		}
	}
	list, _ = m.List(t.Context())
	if len(list) != 2 || list[0].State != StateRetired || list[1].State != StateActive {
		t.Errorf("List() after the switch = %+v", list)
	}

	// The old key verifies until its last token expires...
	clk.Advance(retain - 2*time.Second)
	if err := replica.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, replica.JWKS(), lastOld, AlgES256, clk.Now()); err != nil {
		t.Errorf("the old key's last token no longer verifies before its exp: %v", err)
	}
	// ...then leaves the JWKS, without a reload, and the store, with one.
	clk.Advance(2 * time.Second)
	for name, mm := range map[string]*Manager{"rotating": m, "replica": replica} {
		if got := kids(t, mm.JWKS()); !slices.Equal(got, []string{info.KID}) {
			t.Errorf("%s JWKS kids %v after the old key expired, want only the new key", name, got)
		}
	}
	if err := m.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(stored(t, store)); n != 1 {
		t.Errorf("%d keys stored after expiry, want 1", n)
	}
}

func pemOfKid(t *testing.T, m *Manager, kid string) []byte {
	t.Helper()
	for _, k := range m.set.Load().keys {
		if k.kid == kid {
			return pemOf(k.pubDER)
		}
	}
	t.Fatalf("kid %s not loaded", kid)
	return nil
}

func TestAutomaticRotationByOneReplica(t *testing.T) {
	store := newStore(t)
	clk := newClock()
	cfg := Config{RotateEvery: time.Hour, PublishAhead: 10 * time.Minute, Retain: 6 * time.Minute, Now: clk.Now}
	ms := []*Manager{newManager(t, store, cfg), newManager(t, store, cfg), newManager(t, store, cfg)}
	tickAll := func() {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() {
				if err := m.tick(t.Context()); err != nil {
					t.Errorf("tick: %v", err)
				}
			})
		}
		wg.Wait()
	}
	tickAll()
	if n := len(stored(t, store)); n != 1 {
		t.Fatalf("%d keys before RotateEvery passed, want 1", n)
	}
	clk.Advance(time.Hour)
	tickAll()
	tickAll()
	list, err := ms[0].List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].State != StatePending {
		t.Fatalf("after RotateEvery, three replicas ticking: %+v, want one active and one pending key", list)
	}
	for _, m := range ms {
		if got := kids(t, m.JWKS()); len(got) != 2 || got[1] != list[1].KID {
			t.Errorf("replica JWKS kids %v, want both keys", got)
		}
	}
	// Disabled: no rotation however old the key.
	off := newManager(t, store, Config{Now: clk.Now})
	clk.Advance(1000 * time.Hour)
	if err := off.tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := off.List(t.Context()); len(got) != 1 { // the two above expired meanwhile, one remains
		t.Errorf("RotateEvery 0 rotated: %+v", got)
	}
}

func TestEncryptionAtRest(t *testing.T) {
	store := newStore(t)
	encKey := bytes.Repeat([]byte{7}, 32)
	m := newManager(t, store, Config{EncryptionKey: encKey})
	doc := stored(t, store)[0]
	if !doc.Encrypted {
		t.Error("stored key not flagged encrypted")
	}
	if _, err := x509.ParsePKCS8PrivateKey(doc.PrivateKey); err == nil {
		t.Error("the stored private key is plain PKCS8")
	}
	plain, err := x509.MarshalPKCS8PrivateKey(m.set.Load().keys[0].priv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(doc.PrivateKey, plain) {
		t.Error("the stored private key contains the PKCS8 plaintext")
	}

	wrong := bytes.Repeat([]byte{8}, 32)
	if _, err := NewManager(t.Context(), store, Config{EncryptionKey: wrong, Logger: quiet()}); !errors.Is(err, ErrEncryptionKey) {
		t.Errorf("wrong encryption key: err = %v, want ErrEncryptionKey", err)
	}
	if _, err := NewManager(t.Context(), store, Config{Logger: quiet()}); !errors.Is(err, ErrEncryptionKey) {
		t.Errorf("no encryption key for encrypted keys: err = %v, want ErrEncryptionKey", err)
	}
	again := newManager(t, store, Config{EncryptionKey: encKey})
	if !bytes.Equal(again.JWKS(), m.JWKS()) {
		t.Error("the right encryption key loads another key set")
	}
	now := time.Now()
	raw, err := again.Sign(t.Context(), "at+jwt", claimsAt(now, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, m.JWKS(), raw, AlgES256, now); err != nil {
		t.Errorf("token of the reloaded encrypted key: %v", err)
	}
}

// TestRotationWhileVerifying signs and verifies tokens without pause while
// keys rotate under a fast clock. Verifiers fetch the JWKS periodically over
// HTTP with keyfunc and never refetch on an unknown kid, so a key that
// signed before it was published would fail a verification.
func TestRotationWhileVerifying(t *testing.T) {
	store := newStore(t)
	clk := newClock()
	const ahead, retain, ttl = 10 * time.Minute, 6 * time.Minute, 5 * time.Minute
	cfg := Config{PublishAhead: ahead, Retain: retain, Now: clk.Now, Alg: AlgEdDSA}
	signers := []*Manager{newManager(t, store, cfg), newManager(t, store, cfg)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(signers[0].JWKS())
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{srv.URL}, keyfunc.Override{
		RefreshInterval:   20 * time.Millisecond,
		RefreshUnknownKID: rate.NewLimiter(0, 0), // only the periodic refresh
		RateLimitWaitMax:  time.Millisecond,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(context.Context, error) {}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	published := func(kid string) bool {
		all, err := kf.Storage().KeyReadAll(ctx)
		if err != nil {
			return false
		}
		for _, k := range all {
			if k.Marshal().KID == kid {
				return true
			}
		}
		return false
	}

	var verified, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			m := signers[i%len(signers)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := clk.Now()
				raw, err := m.Sign(ctx, "at+jwt", claimsAt(now, ttl))
				if err == nil {
					_, err = jwt.Parse(raw, kf.Keyfunc, jwt.WithValidMethods([]string{AlgEdDSA}),
						jwt.WithTimeFunc(clk.Now), jwt.WithExpirationRequired())
				}
				if errors.Is(err, jwt.ErrTokenExpired) || (err != nil && expiredBy(raw, clk.Now())) {
					// The clock jumped past exp between Sign and Parse, and
					// maybe past its key's retention too (then the key left
					// the JWKS and keyfunc fails before exp is checked): a
					// right answer.
					continue
				}
				if err != nil {
					if failed.Add(1) <= 3 {
						t.Errorf("verification failed during rotation: %v", err)
					}
					continue
				}
				verified.Add(1)
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	moreVerified := func() {
		n := verified.Load()
		waitFor("more verifications", func() bool { return verified.Load() >= n+20 })
	}
	for range 3 {
		moreVerified()
		info, err := signers[0].Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range signers[1:] {
			if err := m.reload(ctx); err != nil { // Run's periodic reload
				t.Fatal(err)
			}
		}
		moreVerified()
		// PublishAhead covers the verifiers' refresh interval: model it by
		// letting the pending key reach the verifiers before time passes.
		waitFor("the pending key in the verifiers' JWKS", func() bool { return published(info.KID) })
		clk.Advance(ahead) // the new key signs
		moreVerified()
		clk.Advance(retain) // the old key expires and leaves the JWKS
		for _, m := range signers {
			if err := m.reload(ctx); err != nil {
				t.Fatal(err)
			}
		}
		moreVerified()
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d verifications failed during rotation", failed.Load(), failed.Load()+verified.Load())
	}
	if n := len(kids(t, signers[0].JWKS())); n != 1 {
		t.Errorf("%d keys in the JWKS after the rotations settled, want 1", n)
	}
}

// expiredBy reports whether the token raw, unverified, expired before now.
func expiredBy(raw string, now time.Time) bool {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil || c.ExpiresAt == nil {
		return false
	}
	return c.ExpiresAt.Before(now)
}

func TestPrintList(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := now.Add(time.Hour)
	var b strings.Builder
	PrintList(&b, []KeyInfo{
		{KID: "kid-old", Alg: "ES256", State: StateActive, CreatedAt: now, NotBefore: now, RetireAt: &later, ExpiresAt: &later},
		{KID: "kid-new", Alg: "ES256", State: StatePending, CreatedAt: now, NotBefore: later},
	})
	out := b.String()
	for _, want := range []string{"KID", "kid-old", "kid-new", "pending", "2026-01-02T04:04:05Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("PrintList output lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 3 {
		t.Errorf("%d lines, want a header and 2 rows:\n%s", lines, out)
	}
}

func TestParseEncryptionKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfa}, 32)
	for _, s := range []string{
		"fafafafafafafafafafafafafafafafafafafafafafafafafafafafafafafafa",
		"+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vr6+vo=",
		"-vr6-vr6-vr6-vr6-vr6-vr6-vr6-vr6-vr6-vr6-vo",
	} {
		got, err := ParseEncryptionKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseEncryptionKey(%q) = %x, %v", s, got, err)
		}
	}
	if got, err := ParseEncryptionKey(""); got != nil || err != nil {
		t.Errorf("empty: %x, %v; want nil, nil", got, err)
	}
	for _, s := range []string{"c2hvcnQ=", "not base64 !", strings.Repeat("zz", 32)} {
		if _, err := ParseEncryptionKey(s); !errors.Is(err, ErrEncryptionKey) {
			t.Errorf("ParseEncryptionKey(%q): err = %v, want ErrEncryptionKey", s, err)
		}
	}
}

// TestRunSeesOtherReplicasRotation: Run's periodic reload brings a key
// another replica added, and Run ends with its context.
func TestRunSeesOtherReplicasRotation(t *testing.T) {
	store := newStore(t)
	rotator := newManager(t, store, Config{})
	watcher := newManager(t, store, Config{ReloadEvery: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- watcher.Run(ctx) }()
	info, err := rotator.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(kids(t, watcher.JWKS()), info.KID) {
		if time.Now().After(deadline) {
			t.Fatal("Run never loaded the key another replica added")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestAlgorithmChangeRotates: a restart with another algorithm publishes a
// key of that algorithm ahead, and the old key keeps signing until then.
func TestAlgorithmChangeRotates(t *testing.T) {
	store := newStore(t)
	clk := newClock()
	es := newManager(t, store, Config{Now: clk.Now, PublishAhead: time.Minute})
	rs := newManager(t, store, Config{Now: clk.Now, PublishAhead: time.Minute, Alg: AlgRS256})
	if got := rs.Algorithms(); !slices.Equal(got, []string{AlgES256, AlgRS256}) {
		t.Errorf("Algorithms() = %v, want both while the RS256 key is pending", got)
	}
	list, err := rs.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].Alg != AlgRS256 || list[1].State != StatePending {
		t.Fatalf("List() = %+v, want a pending RS256 key", list)
	}
	raw, err := rs.Sign(t.Context(), "at+jwt", claimsAt(clk.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, es.JWKS(), raw, AlgES256, clk.Now()); err != nil {
		t.Errorf("before the switch: %v, want an ES256 token", err)
	}
	// A second RS256 replica starting does not rotate again.
	newManager(t, store, Config{Now: clk.Now, PublishAhead: time.Minute, Alg: AlgRS256})
	if n := len(stored(t, store)); n != 2 {
		t.Errorf("%d keys after a second RS256 start, want 2", n)
	}
	clk.Advance(time.Minute)
	raw, err = rs.Sign(t.Context(), "at+jwt", claimsAt(clk.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, rs.JWKS(), raw, AlgRS256, clk.Now()); err != nil {
		t.Errorf("after the switch: %v, want an RS256 token", err)
	}
}

// With an encryption key set, a key stored in the clear is refused: it
// neither signs nor enters the JWKS, however new it is, and the Manager
// still starts (creating an encrypted key when no other is usable). Whoever
// could write such a key may hold its private half.
func TestPlaintextKeyRefusedWhenEncrypting(t *testing.T) {
	store := newStore(t)
	plain := newManager(t, store, Config{}) // an unencrypted key, generation 1
	planted := plain.set.Load().keys[0].kid
	encKey := bytes.Repeat([]byte{7}, 32)
	m := newManager(t, store, Config{EncryptionKey: encKey})
	if slices.Contains(kids(t, m.JWKS()), planted) {
		t.Fatalf("the plaintext key %s is in the JWKS: %s", planted, m.JWKS())
	}
	raw, err := m.Sign(t.Context(), "at+jwt", claimsAt(time.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := verify(t, m.JWKS(), raw, AlgES256, time.Now()); tok == nil || tok.Header["kid"] == planted {
		t.Fatalf("signed with the refused key or not verifiable: %v", tok)
	}
	if got := stored(t, store); len(got) != 2 || !got[1].Encrypted {
		t.Fatalf("stored keys %+v, want the refused one and a new encrypted one", got)
	}
}

// blockingKeys is a key store that stops answering: Keys waits for its
// context.
type blockingKeys struct{ auth.KeyStore }

func (blockingKeys) Keys(ctx context.Context) ([]auth.SigningKey, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (blockingKeys) DeleteExpired(context.Context, time.Time) error { return nil }

// A round of Run gives up when the store stops answering, instead of
// holding the loop (and every later reload and rotation) forever.
func TestReloadHasATimeout(t *testing.T) {
	store := newStore(t)
	m := newManager(t, store, Config{ReloadTimeout: 50 * time.Millisecond})
	m.store = blockingKeys{store}
	done := make(chan error, 1)
	go func() { done <- m.tick(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("tick = %v, want the reload's deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tick did not return while the store hung")
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("the keys in memory stopped signing after a failed reload: %v", err)
	}
}
