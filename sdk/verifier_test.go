package sdk_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

var now = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }

func validClaims(iss *sdktest.Issuer) sdk.Claims {
	return sdk.Claims{SessionID: "sess-1", ClientID: "web", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: iss.URL, Subject: "user-1", Audience: jwt.ClaimStrings{"jotguard"}, ID: "jti-1",
		IssuedAt: at(-time.Minute), ExpiresAt: at(4 * time.Minute)}}
}

// unsigned builds header.payload.sig from JSON texts, for tokens no library
// would sign.
func unsigned(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

func TestVerify(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	valid := func() sdk.Claims { return validClaims(iss) }
	revoked := revocation.NewSet(6*time.Minute, func() time.Time { return now })
	revoked.Add(revocation.Event{ID: "evt-1", Issuer: iss.URL, Subject: "user-2", // all sessions
		At: now.Add(-30 * time.Second)})
	revoked.Add(revocation.Event{ID: "evt-2", Issuer: iss.URL, Subject: "user-3", SessionID: "sess-dead",
		At: now.Add(-30 * time.Second)})
	revoked.Add(revocation.Event{ID: "evt-3", Issuer: iss.URL, TokenID: "jti-dead",
		At: now.Add(-30 * time.Second)})
	revoked.Add(revocation.Event{ID: "evt-4", Issuer: iss.URL, Subject: "svc-dead", // client_revoked
		At: now.Add(-30 * time.Second), Reason: revocation.ReasonClientRevoked})

	v := iss.Verifier(t, func(c *sdk.Config) {
		c.Revocations = revoked
		c.Now = func() time.Time { return now }
		c.CacheSize = 0 // each case parses; TestVerifyCache covers the cache
	})
	good := iss.Mint(t, valid())
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	pubDER, err := x509.MarshalPKIXPublicKey(&iss.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, valid())
		tok.Header["typ"], tok.Header["kid"] = sdk.TokenType, iss.KID
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withHeader := func(h map[string]any) string {
		if _, ok := h["typ"]; !ok {
			h["typ"] = sdk.TokenType
		}
		return iss.SignHeader(t, h, valid())
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := func() string { // right kid, wrong key
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, valid())
		tok.Header["typ"], tok.Header["kid"] = sdk.TokenType, iss.KID
		s, _ := tok.SignedString(other)
		return s
	}

	tests := []struct {
		name    string
		edit    func(*sdk.Claims) // applied to valid()
		raw     string            // if set, sent as is
		wantErr error
	}{
		{name: "valid", edit: func(*sdk.Claims) {}},
		{name: "valid with two audiences", edit: func(c *sdk.Claims) { c.Audience = jwt.ClaimStrings{"other", "jotguard"} }},
		{name: "valid typ application/at+jwt", raw: withHeader(map[string]any{"typ": "application/at+jwt"})},

		// size and shape
		{name: "empty", raw: "", wantErr: sdk.ErrMissingToken},
		{name: "oversized", raw: good + strings.Repeat("A", sdk.MaxTokenSize), wantErr: sdk.ErrTooLarge},
		{name: "oversized garbage", raw: strings.Repeat("%", sdk.MaxTokenSize+1), wantErr: sdk.ErrTooLarge},
		{name: "not base64", raw: "a%b.c*d.e!f", wantErr: sdk.ErrMalformed},
		{name: "padded base64", raw: parts[0] + "==." + parts[1] + "." + parts[2], wantErr: sdk.ErrMalformed},
		{name: "standard base64 alphabet", raw: strings.ReplaceAll(parts[0]+"+/."+parts[1], "_", "/") + "." + parts[2], wantErr: sdk.ErrMalformed},
		{name: "line break inside", raw: parts[0] + "\n." + parts[1] + "." + parts[2], wantErr: sdk.ErrMalformed},
		{name: "non-canonical base64 tail", raw: parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + "B", wantErr: sdk.ErrMalformed},
		{name: "two segments", raw: parts[0] + "." + parts[1], wantErr: sdk.ErrMalformed},
		{name: "four segments", raw: good + "." + parts[2], wantErr: sdk.ErrMalformed},
		{name: "empty signature", raw: parts[0] + "." + parts[1] + ".", wantErr: sdk.ErrMalformed},
		{name: "zeroed signature", raw: parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)), wantErr: sdk.ErrSignature},
		{name: "short signature", raw: parts[0] + "." + parts[1] + ".AAAA", wantErr: sdk.ErrSignature},
		{name: "signed by another key", raw: foreign(), wantErr: sdk.ErrSignature},
		{name: "header not JSON", raw: "bm90IGpzb24." + parts[1] + "." + parts[2], wantErr: sdk.ErrMalformed},
		{name: "payload tampered", raw: parts[0] + "." + base64.RawURLEncoding.EncodeToString(
			[]byte(strings.Replace(string(payload), "user-1", "admin", 1))) + "." + parts[2], wantErr: sdk.ErrSignature},

		// algorithms
		{name: "alg none", raw: unsigned(`{"alg":"none","typ":"at+jwt","kid":"`+iss.KID+`"}`, string(payload), "AA"), wantErr: sdk.ErrUnsupportedAlg},
		{name: "alg None", raw: unsigned(`{"alg":"None","typ":"at+jwt","kid":"`+iss.KID+`"}`, string(payload), "AA"), wantErr: sdk.ErrUnsupportedAlg},
		{name: "alg NONE", raw: unsigned(`{"alg":"NONE","typ":"at+jwt","kid":"`+iss.KID+`"}`, string(payload), "AA"), wantErr: sdk.ErrUnsupportedAlg},
		{name: "no alg", raw: unsigned(`{"typ":"at+jwt","kid":"`+iss.KID+`"}`, string(payload), "AA"), wantErr: sdk.ErrUnsupportedAlg},
		{name: "HS256 keyed with the public key (DER)", raw: hs256(pubDER), wantErr: sdk.ErrUnsupportedAlg},
		{name: "HS256 keyed with the public key (JWK x)", raw: hs256([]byte(sdktest.PublicJWK(iss.KID, &iss.Key.PublicKey)["x"].(string))), wantErr: sdk.ErrUnsupportedAlg},
		{name: "alg ES384 with an ES256 key", raw: unsigned(`{"alg":"ES384","typ":"at+jwt","kid":"`+iss.KID+`"}`, string(payload), parts[2]), wantErr: sdk.ErrUnsupportedAlg},

		// header
		{name: "embedded jwk", raw: withHeader(map[string]any{"jwk": sdktest.PublicJWK("k", &other.PublicKey)}), wantErr: sdk.ErrMalformed},
		{name: "jku", raw: withHeader(map[string]any{"jku": "https://evil.example/jwks.json"}), wantErr: sdk.ErrMalformed},
		{name: "x5u", raw: withHeader(map[string]any{"x5u": "https://evil.example/cert.pem"}), wantErr: sdk.ErrMalformed},
		{name: "x5c", raw: withHeader(map[string]any{"x5c": []string{"MIIB"}}), wantErr: sdk.ErrMalformed},
		{name: "crit", raw: withHeader(map[string]any{"crit": []string{"exp"}}), wantErr: sdk.ErrMalformed},
		{name: "unknown kid", raw: withHeader(map[string]any{"kid": "no-such-key"}), wantErr: sdk.ErrUnknownKey},
		{name: "no kid", raw: withHeader(map[string]any{"kid": nil}), wantErr: sdk.ErrUnknownKey},
		{name: "typ missing", raw: withHeader(map[string]any{"typ": nil}), wantErr: sdk.ErrWrongType},
		{name: "typ JWT", raw: withHeader(map[string]any{"typ": "JWT"}), wantErr: sdk.ErrWrongType},
		{name: "a SET is not an access token", raw: iss.Sign(t, revocation.TokenType, valid()), wantErr: sdk.ErrWrongType},
		{name: "a real revocation SET", raw: string(iss.RevocationSET(t, revocation.Event{Subject: "user-1", At: now})), wantErr: sdk.ErrWrongType},

		// issuer and audience
		{name: "wrong issuer", edit: func(c *sdk.Claims) { c.Issuer = "https://evil.example" }, wantErr: sdk.ErrWrongIssuer},
		{name: "issuer with a trailing slash", edit: func(c *sdk.Claims) { c.Issuer += "/" }, wantErr: sdk.ErrWrongIssuer},
		{name: "wrong audience", edit: func(c *sdk.Claims) { c.Audience = jwt.ClaimStrings{"billing"} }, wantErr: sdk.ErrWrongAudience},
		{name: "missing iss", edit: func(c *sdk.Claims) { c.Issuer = "" }, wantErr: sdk.ErrInvalid},
		{name: "missing aud", edit: func(c *sdk.Claims) { c.Audience = nil }, wantErr: sdk.ErrInvalid},
		{name: "missing exp", edit: func(c *sdk.Claims) { c.ExpiresAt = nil }, wantErr: sdk.ErrInvalid},
		{name: "missing iat", edit: func(c *sdk.Claims) { c.IssuedAt = nil }, wantErr: sdk.ErrInvalid},
		{name: "missing sub", edit: func(c *sdk.Claims) { c.Subject = "" }, wantErr: sdk.ErrInvalid},
		{name: "missing sid", edit: func(c *sdk.Claims) { c.SessionID = "" }, wantErr: sdk.ErrInvalid},
		{name: "missing sid, sub is another client's id", edit: func(c *sdk.Claims) { c.SessionID, c.ClientID = "", "user-2" }, wantErr: sdk.ErrInvalid},

		// a service account's token: sub = client_id, no sid and no email
		{name: "service account", edit: serviceAccount("svc-1")},
		{name: "service account with an email", edit: func(c *sdk.Claims) { serviceAccount("svc-1")(c); c.Email = "a@example.com" }, wantErr: sdk.ErrInvalid},
		{name: "service account with email_verified", edit: func(c *sdk.Claims) { serviceAccount("svc-1")(c); c.EmailVerified = true }, wantErr: sdk.ErrInvalid},
		{name: "service account revoked: issued before", edit: serviceAccount("svc-dead"), wantErr: sdk.ErrRevoked},
		{name: "service account revoked: issued after", edit: func(c *sdk.Claims) { serviceAccount("svc-dead")(c); c.IssuedAt = at(-29 * time.Second) }},
		{name: "missing jti", edit: func(c *sdk.Claims) { c.ID = "" }, wantErr: sdk.ErrInvalid},

		// time, with the default 30 s leeway
		{name: "expired beyond leeway", edit: func(c *sdk.Claims) { c.ExpiresAt = at(-time.Minute) }, wantErr: sdk.ErrExpired},
		{name: "expired within leeway", edit: func(c *sdk.Claims) { c.ExpiresAt = at(-20 * time.Second) }},
		{name: "nbf beyond leeway", edit: func(c *sdk.Claims) { c.NotBefore = at(time.Minute) }, wantErr: sdk.ErrNotYetValid},
		{name: "nbf within leeway", edit: func(c *sdk.Claims) { c.NotBefore = at(20 * time.Second) }},
		{name: "iat in the future beyond leeway", edit: func(c *sdk.Claims) { c.IssuedAt = at(time.Minute) }, wantErr: sdk.ErrNotYetValid},
		{name: "iat in the future within leeway", edit: func(c *sdk.Claims) { c.IssuedAt = at(20 * time.Second) }},
		{name: "lifetime of max + leeway", edit: func(c *sdk.Claims) { c.IssuedAt, c.ExpiresAt = at(-time.Minute), at(4*time.Minute+30*time.Second) }},
		{name: "lifetime beyond max + leeway", edit: func(c *sdk.Claims) { c.IssuedAt, c.ExpiresAt = at(-time.Minute), at(4*time.Minute+31*time.Second) }, wantErr: sdk.ErrInvalid},

		// revocation
		{name: "user revoked: issued before", edit: func(c *sdk.Claims) { c.Subject = "user-2" }, wantErr: sdk.ErrRevoked},
		{name: "user revoked: issued in the same second", edit: func(c *sdk.Claims) { c.Subject, c.IssuedAt = "user-2", at(-30*time.Second) }, wantErr: sdk.ErrRevoked},
		{name: "user revoked: issued after", edit: func(c *sdk.Claims) { c.Subject, c.IssuedAt = "user-2", at(-29*time.Second) }},
		{name: "session revoked", edit: func(c *sdk.Claims) { c.Subject, c.SessionID = "user-3", "sess-dead" }, wantErr: sdk.ErrRevoked},
		{name: "session revoked, even issued after", edit: func(c *sdk.Claims) { c.Subject, c.SessionID, c.IssuedAt = "user-3", "sess-dead", at(0) }, wantErr: sdk.ErrRevoked},
		{name: "other session of the same user", edit: func(c *sdk.Claims) { c.Subject, c.SessionID = "user-3", "sess-new" }},
		{name: "token revoked", edit: func(c *sdk.Claims) { c.ID = "jti-dead" }, wantErr: sdk.ErrRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" && tt.edit != nil {
				c := valid()
				tt.edit(&c)
				raw = iss.Mint(t, c)
			}
			c, err := v.Verify(t.Context(), raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
			}
			switch {
			case err != nil && c != nil:
				t.Fatalf("Verify() returned claims with error %v", err)
			case err == nil && (c == nil || c.Subject == ""):
				t.Fatalf("Verify() = %+v, nil", c)
			case err != nil:
				if n := countSentinels(err); n != 1 {
					t.Fatalf("Verify() error %v wraps %d sentinels, want exactly 1", err, n)
				}
			}
		})
	}
}

// serviceAccount makes the claims those of service account id's token.
func serviceAccount(id string) func(*sdk.Claims) {
	return func(c *sdk.Claims) { c.Subject, c.ClientID, c.SessionID, c.Email = id, id, "", "" }
}

func countSentinels(err error) int {
	n := 0
	for _, s := range []error{sdk.ErrMissingToken, sdk.ErrTooLarge, sdk.ErrMalformed, sdk.ErrWrongType,
		sdk.ErrUnsupportedAlg, sdk.ErrUnknownKey, sdk.ErrSignature, sdk.ErrExpired, sdk.ErrNotYetValid,
		sdk.ErrWrongIssuer, sdk.ErrWrongAudience, sdk.ErrInvalid, sdk.ErrRevoked,
		sdk.ErrRevocationUnavailable, sdk.ErrNotReady, sdk.ErrInsufficientScope} {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

func revocationEvent() revocation.Event {
	return revocation.Event{ID: "e1", Subject: "user-1", SessionID: "sess-1", At: now}
}

// Claims are decoded strictly: where encoding/json would pick one reading of
// an ambiguous payload (the last of two members, a case variant of a claim
// name, a number written as a string), Verify refuses the token.
func TestVerifyStrictClaims(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Now = func() time.Time { return now } })
	iat, exp, past := now.Add(-time.Minute).Unix(), now.Add(4*time.Minute).Unix(), now.Add(-time.Hour).Unix()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":["jotguard"],"jti":"j1","sid":"s1","client_id":"web","iat":%d%s}`,
			iss.URL, iat, extra)
	}
	tests := []struct {
		name, payload string
		wantErr       error
	}{
		{"valid", claims(fmt.Sprintf(`,"exp":%d`, exp)), nil},
		{"valid with escaped names", claims(fmt.Sprintf(`,"\u0065xp":%d`, exp)), nil},
		{"exp as a string", claims(`,"exp":"9999999999"`), sdk.ErrMalformed},
		{"iat as a string", strings.Replace(claims(fmt.Sprintf(`,"exp":%d`, exp)), fmt.Sprintf(`"iat":%d`, iat), fmt.Sprintf(`"iat":"%d"`, iat), 1), sdk.ErrMalformed},
		{"second sub", claims(fmt.Sprintf(`,"exp":%d,"sub":"admin"`, exp)), sdk.ErrMalformed},
		{"second exp, escaped", claims(fmt.Sprintf(`,"exp":%d,"\u0065xp":%d`, past, exp)), sdk.ErrMalformed},
		{"expired exp next to a future EXP", claims(fmt.Sprintf(`,"exp":%d,"EXP":%d`, past, exp)), sdk.ErrMalformed},
		{"Exp alone", claims(fmt.Sprintf(`,"Exp":%d`, exp)), sdk.ErrMalformed},
		{"case variant of sid", claims(fmt.Sprintf(`,"exp":%d,"SID":"other"`, exp)), sdk.ErrMalformed},
		{"long s folds to sub", claims(fmt.Sprintf(`,"exp":%d,"ſub":"admin"`, exp)), sdk.ErrMalformed},
		{"duplicate in a nested object", claims(fmt.Sprintf(`,"exp":%d,"x":{"a":1,"a":2}`, exp)), sdk.ErrMalformed},
		{"unknown members are fine", claims(fmt.Sprintf(`,"exp":%d,"Foo":1,"foo":2`, exp)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), iss.SignJSON(t, sdk.TokenType, tt.payload))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify() = %+v, %v; want error %v", c, err, tt.wantErr)
			}
		})
	}
}

// A revocation source that forgets revocations before the tokens they
// revoke stop being accepted is a configuration error, refused at start.
func TestNewVerifierRefusesShortRetention(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	for _, tt := range []struct {
		lifetime, leeway, retention time.Duration
		ok                          bool
	}{
		{5 * time.Minute, 30 * time.Second, 6 * time.Minute, true},
		{5 * time.Minute, 30 * time.Second, 5*time.Minute + 59*time.Second, false},
		{40 * time.Second, time.Second, 42 * time.Second, true},
		{40 * time.Second, time.Second, 5 * time.Second, false},
	} {
		_, err := sdk.NewVerifier(t.Context(), sdk.Config{Issuer: iss.URL, Audience: []string{sdktest.Audience},
			MaxTokenLifetime: tt.lifetime, Leeway: tt.leeway, Revocations: revocation.NewSet(tt.retention, nil)})
		if (err == nil) != tt.ok {
			t.Errorf("lifetime %s, leeway %s, retention %s: NewVerifier error %v, want ok=%v", tt.lifetime, tt.leeway, tt.retention, err, tt.ok)
		}
	}
}
