package sdk_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// FuzzVerify: whatever the string, Verify never panics, returns claims or
// an error but not both, and its errors wrap exactly one sentinel. Seeds in
// testdata/fuzz/FuzzVerify, plus tokens signed by this run's key.
func FuzzVerify(f *testing.F) {
	iss := sdktest.NewIssuer(f)
	v := iss.Verifier(f, func(c *sdk.Config) {
		c.Now = func() time.Time { return now }
		c.UnknownKIDWait = 10 * time.Millisecond
	})
	good := iss.Mint(f, validClaims(iss))
	f.Add(good)
	f.Add(iss.SignHeader(f, map[string]any{"typ": sdk.TokenType, "jku": "http://x"}, validClaims(iss)))
	f.Add(string(iss.RevocationSET(f, revocationEvent())))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(t.Context(), token)
		switch {
		case err == nil && c == nil:
			t.Fatal("no claims and no error")
		case err != nil && c != nil:
			t.Fatalf("claims with error %v", err)
		case err != nil && countSentinels(err) != 1:
			t.Fatalf("error %v wraps %d sentinels", err, countSentinels(err))
		case err == nil && (c.Issuer != iss.URL || c.Subject == "" || c.SessionID == ""):
			t.Fatalf("accepted incomplete claims %+v", c)
		case errors.Is(err, sdk.ErrNotReady):
			t.Fatalf("not ready with keys loaded: %v", err)
		}
	})
}
