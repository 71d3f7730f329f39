package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
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
