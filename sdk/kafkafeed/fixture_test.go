package kafkafeed_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// fixture is how the tests make records and check them.
type fixture struct {
	Issuer string
	Events kafkafeed.EventVerifier
	Sign   func(t *testing.T, e revocation.Event) []byte // a valid record value
	Forge  func(t *testing.T, e revocation.Event) []byte // same event, bad signature
	NewSet func(now func() time.Time) kafkafeed.Sink
}

// newFixture signs real SETs with an sdktest issuer and verifies them with
// revocation.SETVerifier against that issuer's JWKS; Forge signs with another
// key whose kid the JWKS does not hold.
func newFixture(t *testing.T) *fixture {
	iss := sdktest.NewIssuer(t)
	forger := sdktest.NewIssuer(t)
	v := iss.Verifier(t)
	eventually(t, "sdktest JWKS loaded", func() bool { return v.Ready() == nil })
	return &fixture{
		Issuer: iss.URL,
		Events: revocation.NewSETVerifier(v.Keyfunc(), iss.URL, []string{sdktest.Audience}, nil),
		Sign:   func(t *testing.T, e revocation.Event) []byte { return iss.RevocationSET(t, e) },
		Forge:  func(t *testing.T, e revocation.Event) []byte { return forger.RevocationSET(t, e) },
		// a long retention: only the feed's replay window decides what is old
		NewSet: func(now func() time.Time) kafkafeed.Sink { return revocation.NewSet(24*time.Hour, now) },
	}
}

var _ kafkafeed.EventVerifier = (*revocation.SETVerifier)(nil)
var _ kafkafeed.Sink = (*revocation.Set)(nil)
