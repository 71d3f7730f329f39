package sdktest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Unit-test a handler's view of revocation without Kafka: inject events into
// a revocation.Set and hand it to the Verifier. In a test, use
// sdktest.NewIssuer(t) and iss.Verifier(t, ...) instead.
func Example() {
	iss, err := sdktest.StartIssuer()
	if err != nil {
		panic(err)
	}
	defer iss.Close()
	revoked := sdktest.NewRevocations(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: iss.URL, Audience: []string{sdktest.Audience},
		Revocations: revoked})
	if err != nil {
		panic(err)
	}

	claims := iss.Claims("user-1")
	token := iss.Mint(nil, claims)
	_, err = v.Verify(ctx, token)
	fmt.Println("before logout:", err)

	revoked.Add(revocation.Event{ID: "evt-1", Issuer: iss.URL, Subject: claims.Subject,
		SessionID: claims.SessionID, At: claims.IssuedAt.Time, Reason: revocation.ReasonLogout})
	_, err = v.Verify(ctx, token)
	fmt.Println("after logout:", errors.Is(err, sdk.ErrRevoked))

	// The same event, as the issuer publishes it on Kafka, verified and decoded.
	set := iss.RevocationSET(nil, revocation.Event{ID: "evt-2", Subject: "user-1", SessionID: "sess-x"})
	e, err := revocation.NewSETVerifier(v.EventTrust()).Verify(ctx, set)
	fmt.Println(e.ID, e.SessionID, err)
	// Output:
	// before logout: <nil>
	// after logout: true
	// evt-2 sess-x <nil>
}
