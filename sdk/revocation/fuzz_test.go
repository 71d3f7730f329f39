package revocation_test

import (
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
