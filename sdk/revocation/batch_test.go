package revocation_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// batchEvents are one event of each scope, as the issuer makes them.
func batchEvents(iss string, at time.Time) []revocation.Event {
	return []revocation.Event{
		{ID: "e1", Issuer: iss, Subject: "alice", SessionID: "s1", At: at, Reason: revocation.ReasonLogout, Initiator: "user", TxnID: "req-1"},
		{ID: "e2", Issuer: iss, Subject: "bob", At: at.Add(-1500 * time.Millisecond), Reason: revocation.ReasonPasswordChange, Initiator: "user"},
		{ID: "e3", Issuer: iss, Subject: "carol", TokenID: "jti-1", At: at.Add(time.Millisecond), Reason: revocation.ReasonAdmin, Initiator: "admin"},
	}
}

func newBatch(iss string, at time.Time, events ...revocation.Event) revocation.Batch {
	return revocation.Batch{ID: "b1", Issuer: iss, Audience: []string{"jotguard"}, IssuedAt: at, Events: events}
}

func seal(t *testing.T, b revocation.Batch, k revocation.BatchKey) []byte {
	t.Helper()
	raw, err := revocation.SealBatch(b, k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBatchRoundTrip(t *testing.T) {
	is := sdktest.NewIssuer(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 250e6, time.UTC)
	want := batchEvents(is.URL, at)
	raw := seal(t, newBatch(is.URL, at, want...), is.BatchKey())
	if !revocation.IsBatch(raw) {
		t.Fatal("IsBatch(a batch) = false")
	}
	for _, v := range []interface {
		Verify(context.Context, []byte) ([]revocation.Event, error)
	}{batchOnly{revocation.NewBatchVerifier(is.Trust())}, revocation.NewRecordVerifier(is.Trust())} {
		got, err := v.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%T: %d events, want %d", v, len(got), len(want))
		}
		for i := range want {
			w := want[i]
			w.IssuedAt = at // the batch's
			if !eventEqual(got[i], w) {
				t.Errorf("%T: event %d = %+v, want %+v", v, i, got[i], w)
			}
		}
	}
	b, err := revocation.NewBatchVerifier(is.Trust()).Verify(t.Context(), raw)
	if err != nil || b.ID != "b1" || b.KID != is.KID || !b.IssuedAt.Equal(at) || !slices.Equal(b.Audience, []string{"jotguard"}) {
		t.Errorf("Verify() = %+v, %v", b, err)
	}
	// A SET is not a batch; the record verifier reads both.
	set := is.RevocationSET(t, want[0])
	if revocation.IsBatch(set) {
		t.Error("IsBatch(a SET) = true")
	}
	if got, err := revocation.NewRecordVerifier(is.Trust()).Verify(t.Context(), set); err != nil || len(got) != 1 || got[0].SessionID != "s1" {
		t.Errorf("RecordVerifier on a SET = %+v, %v", got, err)
	}
}

// batchOnly gives a BatchVerifier the shape of a RecordVerifier.
type batchOnly struct{ v *revocation.BatchVerifier }

func (b batchOnly) Verify(c context.Context, raw []byte) ([]revocation.Event, error) {
	batch, err := b.v.Verify(c, raw)
	return batch.Events, err
}

// TestBatchRejected: what no issuer key signed, or signed for someone else,
// or cannot be read one way only, is refused whole, with exactly one of the
// two sentinels.
func TestBatchRejected(t *testing.T) {
	is := sdktest.NewIssuer(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 250e6, time.UTC)
	good := newBatch(is.URL, at, batchEvents(is.URL, at)...)
	k := is.BatchKey()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := revocation.BatchKey{Alg: "ES256", KID: is.KID, Sign: func(b []byte) ([]byte, error) {
		return jwt.SigningMethodES256.Sign(string(b), other)
	}}
	withKey := func(alg, kid string, sign func([]byte) ([]byte, error)) revocation.BatchKey {
		return revocation.BatchKey{Alg: alg, KID: kid, Sign: sign}
	}
	hmacWithPublicKey := func(b []byte) ([]byte, error) { // the classic alg confusion
		pub, _ := is.Key.PublicKey.Bytes()
		m := hmac.New(sha256.New, pub)
		m.Write(b)
		return m.Sum(nil), nil
	}
	edited := func(b revocation.Batch, edit func(*revocation.Batch)) revocation.Batch {
		b.Events = slices.Clone(b.Events)
		edit(&b)
		return b
	}
	raw := seal(t, good, k)
	signedLen := len(raw) - 2 - 64
	resign := func(edit func([]byte) []byte) []byte { return revocation.Resign(t, raw, k, edit) }
	tests := []struct {
		name    string
		raw     []byte
		wantErr error
	}{
		{"empty", nil, revocation.ErrBadSignature},
		{"magic only", []byte(revocation.BatchMagic), revocation.ErrBadSignature},
		{"oversized", append(bytes.Clone(raw), make([]byte, revocation.MaxBatchSize)...), revocation.ErrBadSignature},
		{"another key, same kid", seal(t, good, foreign), revocation.ErrBadSignature},
		{"unknown kid", seal(t, good, withKey("ES256", "nope", k.Sign)), revocation.ErrBadSignature},
		{"alg none", revocation.SealUnchecked(t, good, withKey("none", is.KID, func([]byte) ([]byte, error) { return []byte{0}, nil })), revocation.ErrBadSignature},
		{"alg HS256 keyed with the public key", revocation.SealUnchecked(t, good, withKey("HS256", is.KID, hmacWithPublicKey)), revocation.ErrBadSignature},
		{"alg RS256 on an EC key", revocation.SealUnchecked(t, good, withKey("RS256", is.KID, k.Sign)), revocation.ErrBadSignature},
		{"no kid", revocation.SealUnchecked(t, good, withKey("ES256", "", k.Sign)), revocation.ErrBadSignature},
		{"signature cut", append(bytes.Clone(raw[:len(raw)-3]), 0, 63), revocation.ErrBadSignature},
		{"signature zeroed", append(append(bytes.Clone(raw[:signedLen]), make([]byte, 64)...), 0, 64), revocation.ErrBadSignature},
		{"signature length zero", append(bytes.Clone(raw[:len(raw)-2]), 0, 0), revocation.ErrBadSignature},
		{"signature length past the start", append(bytes.Clone(raw[:len(raw)-2]), 0xff, 0xff), revocation.ErrBadSignature},
		{"a record appended", append(bytes.Clone(raw), raw...), revocation.ErrBadSignature},
		{"version 2, signed", resign(func(s []byte) []byte { s[4] = 2; return s }), revocation.ErrBadSignature},
		{"another issuer", seal(t, edited(good, func(b *revocation.Batch) {
			b.Issuer = "https://evil.example"
			for i := range b.Events {
				b.Events[i].Issuer = ""
			}
		}), k), revocation.ErrBadEvent},
		{"another audience", seal(t, edited(good, func(b *revocation.Batch) { b.Audience = []string{"billing"} }), k), revocation.ErrBadEvent},
		{"no audience", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) { b.Audience = nil }), k), revocation.ErrBadEvent},
		{"no events", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) { b.Events = nil }), k), revocation.ErrBadEvent},
		{"an event of no scope", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) {
			b.Events[1].Subject = ""
		}), k), revocation.ErrBadEvent},
		{"a session event without its user", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) {
			b.Events[0].Subject = ""
		}), k), revocation.ErrBadEvent},
		{"an event without an id", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) { b.Events[2].ID = "" }), k), revocation.ErrBadEvent},
		{"an event at the epoch", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) {
			b.Events[2].At = time.UnixMilli(0)
		}), k), revocation.ErrBadEvent},
		{"too many events", revocation.SealUnchecked(t, edited(good, func(b *revocation.Batch) {
			b.Events = slices.Repeat(b.Events[:1], revocation.MaxBatchEvents+1)
		}), k), revocation.ErrBadEvent},
		{"a byte after the last event, signed", resign(func(s []byte) []byte { return append(s, 0) }), revocation.ErrBadEvent},
		{"the last event cut, signed", resign(func(s []byte) []byte { return s[:len(s)-1] }), revocation.ErrBadEvent},
		{"an unknown kind, signed", resign(func(s []byte) []byte {
			i := bytes.LastIndex(s, []byte("\x02e3")) - 2 // kind, at (one byte), then the id
			if s[i] != 't' {
				t.Fatalf("kind of e3 not at %d", i)
			}
			s[i] = 'x'
			return s
		}), revocation.ErrBadEvent},
		{"a varint not in its shortest form, signed", resign(func(s []byte) []byte {
			i := bytes.Index(s, []byte("\x02e1"))
			return slices.Concat(s[:i], []byte{0x82, 0x00}, s[i+1:]) // length 2 in two bytes
		}), revocation.ErrBadEvent},
		{"a string that is not UTF-8, signed", resign(func(s []byte) []byte {
			i := bytes.Index(s, []byte("\x05alice"))
			s[i+1] = 0xff
			return s
		}), revocation.ErrBadEvent},
		{"more events than bytes, signed", resign(func(s []byte) []byte {
			i := bytes.Index(s, []byte("\x02b1")) + 3 + 6 // id, then iat (6 bytes in 2025), then count
			if s[i] != 3 {
				t.Fatalf("count not at %d", i)
			}
			return slices.Concat(s[:i], binary.AppendUvarint(nil, revocation.MaxBatchEvents), s[i+1:])
		}), revocation.ErrBadEvent},
	}
	bv := revocation.NewBatchVerifier(is.Trust())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bv.Verify(t.Context(), tt.raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() = %d events, error %v; want %v", len(b.Events), err, tt.wantErr)
			}
			if errors.Is(err, revocation.ErrBadEvent) == errors.Is(err, revocation.ErrBadSignature) {
				t.Fatalf("error %v must wrap exactly one of ErrBadEvent, ErrBadSignature", err)
			}
			if len(b.Events) != 0 {
				t.Fatalf("a rejected batch gave %d events", len(b.Events))
			}
		})
	}
	t.Run("an unknown kid wraps sdk.ErrUnknownKey", func(t *testing.T) {
		_, err := bv.Verify(t.Context(), seal(t, good, withKey("ES256", "nope", k.Sign)))
		if !errors.Is(err, sdk.ErrUnknownKey) {
			t.Fatalf("Verify() = %v, want sdk.ErrUnknownKey for the feed's key refresh", err)
		}
	})
	t.Run("SealBatch refuses what the verifier would", func(t *testing.T) {
		for name, b := range map[string]revocation.Batch{
			"no events":              edited(good, func(b *revocation.Batch) { b.Events = nil }),
			"no audience":            edited(good, func(b *revocation.Batch) { b.Audience = nil }),
			"an event of no scope":   edited(good, func(b *revocation.Batch) { b.Events[1].Subject = "" }),
			"another issuer's event": edited(good, func(b *revocation.Batch) { b.Events[1].Issuer = "https://evil.example" }),
			"too many events":        edited(good, func(b *revocation.Batch) { b.Events = slices.Repeat(b.Events[:1], revocation.MaxBatchEvents+1) }),
			"too many bytes": edited(good, func(b *revocation.Batch) {
				b.Events = slices.Repeat([]revocation.Event{{ID: strings.Repeat("x", 1000), Subject: "a", At: at}}, 1100)
			}),
		} {
			if _, err := revocation.SealBatch(b, k); err == nil {
				t.Errorf("%s: sealed", name)
			}
		}
		if _, err := revocation.SealBatch(good, withKey("HS256", is.KID, hmacWithPublicKey)); err == nil {
			t.Error("sealed with HS256")
		}
	})
}

// TestBatchSignatureCoversEveryByte: changing any bit of a batch, in its
// head (version, alg, kid, issuer, audiences, id, time), in any event, or
// in its signature, makes it rejected.
func TestBatchSignatureCoversEveryByte(t *testing.T) {
	is := sdktest.NewIssuer(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 250e6, time.UTC)
	raw := seal(t, newBatch(is.URL, at, batchEvents(is.URL, at)...), is.BatchKey())
	bv := revocation.NewBatchVerifier(is.Trust())
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			m := bytes.Clone(raw)
			m[i] ^= bit
			if b, err := bv.Verify(t.Context(), m); err == nil {
				t.Fatalf("byte %d ^ %#x: accepted %d events", i, bit, len(b.Events))
			}
		}
	}
}

// TestBatchReplayIsHarmless: a batch applied again (a redelivery, a relay
// retry, a copy written later by anyone) changes nothing: its events are
// duplicates, and once past their retention they are not applied at all.
func TestBatchReplayIsHarmless(t *testing.T) {
	is := sdktest.NewIssuer(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	events := batchEvents(is.URL, at)
	raw := seal(t, newBatch(is.URL, at, events...), is.BatchKey())
	bv := revocation.NewBatchVerifier(is.Trust())
	now := time.Now()
	set := revocation.NewSet(5*time.Minute, func() time.Time { return now })
	apply := func() (added int) {
		b, err := bv.Verify(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			if set.Add(e) {
				added++
			}
		}
		return added
	}
	if n := apply(); n != 3 {
		t.Fatalf("first delivery: %d new events, want 3", n)
	}
	tok := &sdk.Claims{SessionID: "s1", RegisteredClaims: jwt.RegisteredClaims{Issuer: is.URL, Subject: "alice"}}
	if r, _ := set.Revoked(tok); !r {
		t.Fatal("the session is not revoked")
	}
	if n := apply(); n != 0 || set.Len() != 3 {
		t.Fatalf("replayed: %d new events, %d entries; want none new, 3", n, set.Len())
	}
	now = now.Add(10 * time.Minute) // past the retention: a replay adds nothing back
	set.Sweep()
	if n := apply(); n != 0 || set.Len() != 0 {
		t.Fatalf("replayed after the retention: %d new events, %d entries; want none", n, set.Len())
	}
}

func TestSplitBatches(t *testing.T) {
	is := sdktest.NewIssuer(t)
	at := time.Now()
	var events []revocation.Event
	for i := range 5000 {
		events = append(events, revocation.Event{ID: "evt-" + strings.Repeat("x", 20) + string(rune('a'+i%26)),
			Issuer: is.URL, Subject: "user", SessionID: "sid-" + strings.Repeat("y", 20), At: at})
	}
	const maxBytes = 64 << 10
	runs := revocation.SplitBatches(events, maxBytes)
	var back []revocation.Event
	for i, r := range runs {
		raw := seal(t, newBatch(is.URL, at, r...), is.BatchKey())
		if len(raw) > maxBytes {
			t.Errorf("run %d: %d bytes, want at most %d", i, len(raw), maxBytes)
		}
		if i < len(runs)-1 && len(raw) < maxBytes*3/4 {
			t.Errorf("run %d: only %d bytes", i, len(raw))
		}
		back = append(back, r...)
	}
	if len(back) != len(events) || len(runs) < 2 {
		t.Fatalf("%d runs of %d events in all, want the %d events in order", len(runs), len(back), len(events))
	}
	for i := range events {
		if back[i].ID != events[i].ID {
			t.Fatalf("event %d out of order", i)
		}
	}
	if n := len(revocation.SplitBatches(slices.Repeat(events[:1], revocation.MaxBatchEvents+1), 1<<30)); n != 2 {
		t.Errorf("%d runs for MaxBatchEvents+1 small events, want 2", n)
	}
}
