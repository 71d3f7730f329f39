package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestSETVerify(t *testing.T) {
	is := sdktest.NewIssuer(t)
	sv := revocation.NewSETVerifier(is.Trust())
	at := time.Date(2025, 1, 2, 3, 4, 5, 250e6, time.UTC)
	session := revocation.Event{ID: "e1", Issuer: is.URL, Subject: "alice", SessionID: "s1", At: at,
		IssuedAt: at.Truncate(time.Second), Reason: revocation.ReasonLogout, Initiator: "user", TxnID: "req-1"}
	set := func(e revocation.Event, aud ...string) revocation.SET {
		if len(aud) == 0 {
			aud = []string{"jotguard"}
		}
		return revocation.NewSET(e, aud)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := func() []byte {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, set(session))
		tok.Header["typ"], tok.Header["kid"] = revocation.TokenType, is.KID
		s, _ := tok.SignedString(other)
		return []byte(s)
	}
	good := string(is.RevocationSET(t, session))
	parts := strings.Split(good, ".")
	withExp := set(session)
	withExp.ExpiresAt = jwt.NewNumericDate(at.Add(time.Hour))
	noEvent := set(session)
	noEvent.Events = nil

	tests := []struct {
		name    string
		raw     []byte
		want    revocation.Event
		wantErr error
	}{
		{name: "session event", raw: []byte(good), want: session},
		{name: "user event", raw: is.RevocationSET(t, revocation.Event{ID: "e2", Subject: "bob", At: at, IssuedAt: at.Truncate(time.Second)}),
			want: revocation.Event{ID: "e2", Issuer: is.URL, Subject: "bob", At: at, IssuedAt: at.Truncate(time.Second)}},
		{name: "token event", raw: is.RevocationSET(t, revocation.Event{ID: "e3", TokenID: "jti-1", At: at, IssuedAt: at.Truncate(time.Second)}),
			want: revocation.Event{ID: "e3", Issuer: is.URL, TokenID: "jti-1", At: at, IssuedAt: at.Truncate(time.Second)}},
		{name: "empty", raw: nil, wantErr: revocation.ErrBadSignature},
		{name: "garbage", raw: []byte("not a jwt"), wantErr: revocation.ErrBadSignature},
		{name: "oversized", raw: []byte(good + strings.Repeat("A", revocation.MaxSETSize)), wantErr: revocation.ErrBadSignature},
		{name: "padded", raw: []byte(parts[0] + "==." + parts[1] + "." + parts[2]), wantErr: revocation.ErrBadSignature},
		{name: "zeroed signature", raw: []byte(parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))), wantErr: revocation.ErrBadSignature},
		{name: "another key", raw: foreign(), wantErr: revocation.ErrBadSignature},
		{name: "an access token is not a SET", raw: []byte(is.Mint(t, is.Claims("alice"))), wantErr: revocation.ErrBadSignature},
		{name: "typ JWT", raw: []byte(is.Sign(t, "JWT", set(session))), wantErr: revocation.ErrBadSignature},
		{name: "jku header", raw: []byte(is.SignHeader(t, map[string]any{"typ": revocation.TokenType, "jku": "https://evil.example"}, set(session))), wantErr: revocation.ErrBadSignature},
		{name: "alg none", raw: []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"secevent+jwt"}`)) + "." + parts[1] + "."), wantErr: revocation.ErrBadSignature},
		{name: "unknown kid", raw: []byte(is.SignHeader(t, map[string]any{"typ": revocation.TokenType, "kid": "nope"}, set(session))), wantErr: revocation.ErrBadSignature},
		{name: "wrong issuer", raw: []byte(is.Sign(t, revocation.TokenType, set(revocation.Event{ID: "e", Issuer: "https://evil.example", Subject: "a", At: at}))), wantErr: revocation.ErrBadEvent},
		{name: "wrong audience", raw: []byte(is.Sign(t, revocation.TokenType, set(session, "billing"))), wantErr: revocation.ErrBadEvent},
		{name: "exp present", raw: []byte(is.Sign(t, revocation.TokenType, withExp)), wantErr: revocation.ErrBadEvent},
		{name: "no event", raw: []byte(is.Sign(t, revocation.TokenType, noEvent)), wantErr: revocation.ErrBadEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sv.Verify(t.Context(), tt.raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !eventEqual(got, tt.want) {
				t.Fatalf("Verify() = %+v, want %+v", got, tt.want)
			}
			if err != nil && errors.Is(err, revocation.ErrBadEvent) == errors.Is(err, revocation.ErrBadSignature) {
				t.Fatalf("Verify() error %v must wrap exactly one of ErrBadEvent, ErrBadSignature", err)
			}
		})
	}
}

func eventEqual(a, b revocation.Event) bool {
	return a.ID == b.ID && a.Issuer == b.Issuer && a.Subject == b.Subject && a.SessionID == b.SessionID &&
		a.TokenID == b.TokenID && a.At.Equal(b.At) && a.IssuedAt.Equal(b.IssuedAt) && a.Reason == b.Reason &&
		a.Initiator == b.Initiator && a.TxnID == b.TxnID
}

// A correctly signed event is applied whatever the shape of its
// informational members; an ambiguous payload (a duplicate member, a case
// variant of a member name, a NumericDate written as a string) is refused.
func TestSETLenientInfoStrictStructure(t *testing.T) {
	is := sdktest.NewIssuer(t)
	sv := revocation.NewSETVerifier(is.Trust())
	const at = 1735787045
	set := func(extra, event string) string {
		return fmt.Sprintf(`{"iss":%q,"jti":"e1","iat":%d,"aud":["jotguard"]%s,`+
			`"sub_id":{"format":"complex","user":{"format":"iss_sub","iss":%q,"sub":"alice"},"session":{"format":"opaque","id":"s1"}},`+
			`"events":{%q:{"event_timestamp":%d%s}}}`, is.URL, at, extra, is.URL, revocation.SessionRevoked, at, event)
	}
	tests := []struct {
		name, payload      string
		wantErr            error
		wantReason, wantBy string
		wantOdd            string
	}{
		{"standard", set(`,"txn":"req-1"`, `,"initiating_entity":"user","reason_admin":{"en":"logout"}`), nil, "logout", "user", ""},
		{"reason as a plain string", set("", `,"reason_admin":"logout"`), nil, "logout", "", "reason_admin"},
		{"reason in another language only", set("", `,"reason_admin":{"de":"Abmeldung"}`), nil, "Abmeldung", "", ""},
		{"reason a number", set("", `,"reason_admin":42`), nil, "", "", "reason_admin"},
		{"initiator an object, txn a number", set(`,"txn":7`, `,"initiating_entity":{"kind":"user"}`), nil, "", "", "initiating_entity,txn"},
		{"duplicate sub_id", strings.Replace(set("", ""), `"sub_id":`, `"sub_id":{"format":"iss_sub","iss":"x","sub":"bob"},"sub_id":`, 1), revocation.ErrBadEvent, "", "", ""},
		{"case variant SUB_ID", strings.Replace(set("", ""), `"sub_id":`, `"SUB_ID":`, 1), revocation.ErrBadEvent, "", "", ""},
		{"iat as a string", strings.Replace(set("", ""), fmt.Sprintf(`"iat":%d`, at), fmt.Sprintf(`"iat":"%d"`, at), 1), revocation.ErrBadEvent, "", "", ""},
		{"timestamp as a string", strings.Replace(set("", ""), fmt.Sprintf(`"event_timestamp":%d`, at), fmt.Sprintf(`"event_timestamp":"%d"`, at), 1), revocation.ErrBadEvent, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := sv.Verify(t.Context(), []byte(is.SignJSON(t, revocation.TokenType, tt.payload)))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify() = %+v, %v; want error %v", e, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if e.Subject != "alice" || e.SessionID != "s1" || e.Reason != tt.wantReason || e.Initiator != tt.wantBy ||
				e.Odd != tt.wantOdd {
				t.Fatalf("Verify() = %+v; want session s1 of alice, reason %q, initiator %q, odd %v", e, tt.wantReason, tt.wantBy, tt.wantOdd)
			}
		})
	}
}
