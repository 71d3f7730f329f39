package revocation_test

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

func ExampleSet() {
	logout := time.Date(2025, 1, 2, 3, 4, 5, 500e6, time.UTC)
	// keep events for the longest access-token lifetime plus the leeway
	s := revocation.NewSet(5*time.Minute+30*time.Second, func() time.Time { return logout })

	// a global logout: the issuer revokes each session by sid
	fmt.Println(s.Add(revocation.Event{ID: "evt-1", Issuer: "https://auth.example", Subject: "ada",
		SessionID: "sess-1", At: logout, Reason: revocation.ReasonLogoutGlobal}))
	fmt.Println(s.Add(revocation.Event{ID: "evt-1", Issuer: "https://auth.example", Subject: "ada",
		SessionID: "sess-1", At: logout})) // redelivered: a duplicate

	token := func(sid string) *sdk.Claims {
		return &sdk.Claims{SessionID: sid, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://auth.example", Subject: "ada", ID: "jti-" + sid,
			IssuedAt: jwt.NewNumericDate(logout)}} // the same second
	}
	old, _ := s.Revoked(token("sess-1"))
	fresh, _ := s.Revoked(token("sess-2")) // a login right after the logout
	fmt.Println(old, fresh)
	// Output:
	// true
	// false
	// true false
}
