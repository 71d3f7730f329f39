package revocation_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// FuzzSETVerify: whatever the bytes, Verify never panics, and an accepted
// event is a complete one. Seeds in testdata/fuzz/FuzzSETVerify, plus SETs
// signed by this run's key.
func FuzzSETVerify(f *testing.F) {
	is := sdktest.NewIssuer(f)
	sv := revocation.NewSETVerifier(is.Trust())
	at := time.Unix(1735787045, 0)
	for _, e := range []revocation.Event{
		{ID: "e1", Subject: "alice", SessionID: "s1", At: at, Reason: revocation.ReasonLogout},
		{ID: "e2", Subject: "bob", At: at},
		{ID: "e3", TokenID: "jti", At: at},
	} {
		f.Add(is.RevocationSET(f, e))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := sv.Verify(t.Context(), raw)
		if err != nil {
			if errors.Is(err, revocation.ErrBadEvent) == errors.Is(err, revocation.ErrBadSignature) {
				t.Fatalf("error %v wraps not exactly one sentinel", err)
			}
			return
		}
		if e.ID == "" || e.Issuer != is.URL || e.At.IsZero() ||
			(e.TokenID == "" && e.SessionID == "" && e.Subject == "") {
			t.Fatalf("accepted an incomplete event %+v", e)
		}
	})
}

// FuzzBatchVerify: whatever the signed part of a batch says, signed with a
// trusted key, Verify never panics; it accepts only complete events, and
// only a batch with one reading: what it accepts encodes back to the same
// bytes. Seeds: batches of this run's key.
func FuzzBatchVerify(f *testing.F) {
	is := sdktest.NewIssuer(f)
	bv := revocation.NewBatchVerifier(is.Trust())
	k := is.BatchKey()
	at := time.Unix(1735787045, 0)
	for _, events := range [][]revocation.Event{
		{{ID: "e1", Subject: "alice", SessionID: "s1", At: at, Reason: revocation.ReasonLogout, Initiator: "user", TxnID: "t"}},
		{{ID: "e2", Subject: "bob", At: at}, {ID: "e3", TokenID: "jti", At: at.Add(-time.Hour)}},
	} {
		raw := is.RevocationBatch(f, events...)
		f.Add(raw[:len(raw)-2-64]) // the signed part
	}
	f.Fuzz(func(t *testing.T, signed []byte) {
		if len(signed) > 1<<16 {
			return
		}
		raw := revocation.SignBatch(t, bytes.Clone(signed), k)
		b, err := bv.Verify(t.Context(), raw)
		if err != nil {
			if errors.Is(err, revocation.ErrBadEvent) == errors.Is(err, revocation.ErrBadSignature) {
				t.Fatalf("error %v wraps not exactly one sentinel", err)
			}
			return
		}
		for _, e := range b.Events {
			if e.ID == "" || e.Issuer != is.URL || e.At.IsZero() ||
				(e.TokenID == "" && e.SessionID == "" && e.Subject == "") {
				t.Fatalf("accepted an incomplete event %+v", e)
			}
		}
		if again := revocation.EncodeBatch(b, k); !bytes.Equal(again, signed) {
			t.Fatalf("accepted a batch that encodes back differently:\n%x\n%x", signed, again)
		}
	})
}
