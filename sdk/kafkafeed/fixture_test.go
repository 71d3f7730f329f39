package kafkafeed_test

import (
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// fixture is how the tests make records and check them.
type fixture struct {
	Issuer string
	Trust  sdk.EventTrust                                // what a Verifier of the issuer hands its feed
	Sign   func(t *testing.T, e revocation.Event) []byte // a valid record value
	Forge  func(t *testing.T, e revocation.Event) []byte // same event, bad signature
	// SignBatch and ForgeBatch are Sign and Forge for many events in one batch.
	SignBatch, ForgeBatch func(t *testing.T, events ...revocation.Event) []byte
	Key                   revocation.BatchKey // the issuer's
	NewSet                func(now func() time.Time) kafkafeed.Sink
}

// newFixture signs real SETs with an sdktest issuer and verifies them
// against that issuer's JWKS, fetched over HTTP as a Verifier does; Forge
// signs with another key whose kid the JWKS does not hold.
func newFixture(t *testing.T) *fixture {
	iss := sdktest.NewIssuer(t)
	forger := sdktest.NewIssuer(t)
	v := iss.Verifier(t)
	eventually(t, "sdktest JWKS loaded", func() bool { return v.Ready() == nil })
	return &fixture{
		Issuer:    iss.URL,
		Trust:     v.EventTrust(),
		Sign:      func(t *testing.T, e revocation.Event) []byte { return iss.RevocationSET(t, e) },
		Forge:     func(t *testing.T, e revocation.Event) []byte { return forger.RevocationSET(t, e) },
		Key:       iss.BatchKey(),
		SignBatch: func(t *testing.T, events ...revocation.Event) []byte { return iss.RevocationBatch(t, events...) },
		ForgeBatch: func(t *testing.T, events ...revocation.Event) []byte { // our issuer's name, another key
			raw, err := revocation.SealBatch(revocation.Batch{ID: "forged", Issuer: iss.URL, Audience: []string{sdktest.Audience},
				IssuedAt: time.Now(), Events: events}, forger.BatchKey())
			if err != nil {
				t.Fatal(err)
			}
			return raw
		},
		// a long retention: only the feed's replay window decides what is old
		NewSet: func(now func() time.Time) kafkafeed.Sink { return revocation.NewSet(24*time.Hour, now) },
	}
}

var _ kafkafeed.Sink = (*revocation.Set)(nil)
