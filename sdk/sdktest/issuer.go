package sdktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// Audience is the aud of Claims and of RevocationSET.
const Audience = "jotguard"

// Issuer is a local stand-in for the jotguard issuer: an ES256 key served as
// a JWKS by an httptest server. URL is both the iss of its tokens and the
// base URL of its JWKS (URL + "/.well-known/jwks.json").
type Issuer struct {
	URL string
	KID string
	Key *ecdsa.PrivateKey

	srv  *httptest.Server
	jwks []byte
	down atomic.Bool
	hits atomic.Int64
}

// NewIssuer starts an Issuer that tb stops at its end.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	iss, err := StartIssuer()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(iss.Close)
	return iss
}

// StartIssuer starts an Issuer outside a test (examples, TestMain); Close
// stops it.
func StartIssuer() (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{KID: "sdktest-" + rand.Text()[:8], Key: key}
	jwks, err := json.Marshal(map[string]any{"keys": []any{PublicJWK(iss.KID, &key.PublicKey)}})
	if err != nil {
		return nil, err
	}
	iss.jwks = jwks
	iss.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		iss.hits.Add(1)
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = w.Write(jwks)
		}
	}))
	iss.URL = iss.srv.URL
	return iss, nil
}

// PublicJWK is the JWK of an ES256 public key.
func PublicJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err) // a P-256 key always encodes
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": enc(b[1:33]), "y": enc(b[33:])}
}

// JWKS is the issuer's key set document.
func (iss *Issuer) JWKS() []byte { return iss.jwks }

// Keys is the issuer's key set as an in-process key source: no HTTP, ready
// at once.
func (iss *Issuer) Keys() *sdk.LocalKeys { return sdk.NewLocalKeys(iss.JWKS) }

// Trust is what authenticates this issuer's revocation events (audience
// jotguard), with the in-process key source, for tests that verify SETs.
func (iss *Issuer) Trust() sdk.EventTrust {
	return sdk.EventTrust{Keys: iss.Keys(), Issuer: iss.URL, Audience: []string{Audience}}
}

// JWKSURL is where the key set is served.
func (iss *Issuer) JWKSURL() string { return iss.URL + "/.well-known/jwks.json" }

// Close stops the JWKS server for good: an outage that does not end.
func (iss *Issuer) Close() { iss.srv.Close() }

// SetDown makes the JWKS answer 503 (true) or the key set again (false): an
// outage the issuer recovers from, at the same URL.
func (iss *Issuer) SetDown(down bool) { iss.down.Store(down) }

// JWKSRequests counts the requests for the key set, answered or not.
func (iss *Issuer) JWKSRequests() int64 { return iss.hits.Load() }

// Claims returns valid claims for sub: iss, aud [jotguard], iat now, exp in
// five minutes, a fresh jti and sid.
func (iss *Issuer) Claims(sub string) sdk.Claims {
	now := time.Now()
	return sdk.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss.URL, Subject: sub, Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID: rand.Text(),
		},
		ClientID:  "sdktest",
		SessionID: "sess-" + rand.Text()[:10],
	}
}

// ServiceClaims returns valid claims of service account clientID's token,
// as the client credentials grant mints them: sub and client_id are
// clientID, no sid and no email.
func (iss *Issuer) ServiceClaims(clientID string) sdk.Claims {
	c := iss.Claims(clientID)
	c.ClientID, c.SessionID = clientID, ""
	return c
}

// Mint signs c as an access token (typ at+jwt, the issuer's kid). tb may be
// nil outside tests: Mint then panics on error.
func (iss *Issuer) Mint(tb testing.TB, c sdk.Claims) string {
	return iss.Sign(tb, sdk.TokenType, c.Signable())
}

// Sign signs any claims with typ and the issuer's kid.
func (iss *Issuer) Sign(tb testing.TB, typ string, claims jwt.Claims) string {
	return iss.SignHeader(tb, map[string]any{"typ": typ}, claims)
}

// SignHeader signs claims with ES256 and the issuer's key; header is added
// to {alg, kid} and may override them (a nil value deletes one), for tests
// of headers a real issuer never sends.
func (iss *Issuer) SignHeader(tb testing.TB, header map[string]any, claims jwt.Claims) string {
	if tb != nil {
		tb.Helper()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = iss.KID
	for k, v := range header {
		if v == nil {
			delete(t.Header, k)
		} else {
			t.Header[k] = v
		}
	}
	s, err := t.SignedString(iss.Key)
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatal(err)
	}
	return s
}

// SignJSON signs payload, a JSON text taken byte for byte (duplicate or
// oddly cased members, strings where numbers belong), with typ and the
// issuer's key: for tests of tokens no JWT library would produce.
func (iss *Issuer) SignJSON(tb testing.TB, typ, payload string) string {
	if tb != nil {
		tb.Helper()
	}
	header, err := json.Marshal(map[string]string{"alg": "ES256", "kid": iss.KID, "typ": typ})
	if err == nil {
		enc := base64.RawURLEncoding.EncodeToString
		input := enc(header) + "." + enc([]byte(payload))
		var sig []byte
		if sig, err = jwt.SigningMethodES256.Sign(input, iss.Key); err == nil {
			return input + "." + enc(sig)
		}
	}
	if tb == nil {
		panic(err)
	}
	tb.Fatal(err)
	return ""
}

// RevocationSET signs e as the issuer would publish it, for
// audience jotguard. An empty e.ID or zero e.At or e.IssuedAt get a fresh
// jti and now.
func (iss *Issuer) RevocationSET(tb testing.TB, e revocation.Event) []byte {
	if e.Issuer == "" {
		e.Issuer = iss.URL
	}
	if e.ID == "" {
		e.ID = rand.Text()
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.IssuedAt.IsZero() {
		e.IssuedAt = e.At
	}
	return []byte(iss.Sign(tb, revocation.TokenType, revocation.NewSET(e, []string{Audience})))
}

// BatchKey signs revocation batches with the issuer's key (ES256).
func (iss *Issuer) BatchKey() revocation.BatchKey {
	return revocation.BatchKey{Alg: "ES256", KID: iss.KID, Sign: func(signed []byte) ([]byte, error) {
		return jwt.SigningMethodES256.Sign(string(signed), iss.Key)
	}}
}

// RevocationBatch signs events as one batch, as the issuer writes them to
// the revocation topic, for audience jotguard. Events with an empty ID or
// a zero At get a fresh id and now, as RevocationSET does.
func (iss *Issuer) RevocationBatch(tb testing.TB, events ...revocation.Event) []byte {
	if tb != nil {
		tb.Helper()
	}
	now := time.Now()
	b := revocation.Batch{ID: rand.Text(), Issuer: iss.URL, Audience: []string{Audience}, IssuedAt: now,
		Events: slices.Clone(events)}
	for i := range b.Events {
		e := &b.Events[i]
		if e.ID == "" {
			e.ID = rand.Text()
		}
		if e.At.IsZero() {
			e.At = now
		}
	}
	raw, err := revocation.SealBatch(b, iss.BatchKey())
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatal(err)
	}
	return raw
}

// Verifier returns a Verifier of this issuer's tokens for audience jotguard,
// stopped at the end of tb; edit changes its Config first.
func (iss *Issuer) Verifier(tb testing.TB, edit ...func(*sdk.Config)) *sdk.Verifier {
	tb.Helper()
	cfg := sdk.Config{Issuer: iss.URL, Audience: []string{Audience}}
	for _, e := range edit {
		e(&cfg)
	}
	v, err := sdk.NewVerifier(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// NewRevocations returns an empty revocation set for tests to Add events
// to (revocation injection): pass it as sdk.Config.Revocations. It keeps
// events as long as a Verifier with the default token lifetime and leeway
// needs (sdk.Retention: 6 minutes); now nil is time.Now.
func NewRevocations(now func() time.Time) *revocation.Set {
	return revocation.NewSet(sdk.Retention(sdk.DefaultMaxTokenLifetime, 30*time.Second), now)
}
