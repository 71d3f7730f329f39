package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// myHandler stands for the handler under test: it greets the caller.
var myHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, _ := sdk.ClaimsFromContext(r.Context())
	fmt.Fprintf(w, "hello %s\n", c.Subject)
})

// docs/sdk.md: testing
func TestHandler(t *testing.T) {
	iss := sdktest.NewIssuer(t)         // ES256 key + JWKS over httptest
	revs := sdktest.NewRevocations(nil) // inject revocations
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	h := sdk.Middleware(v, sdk.RequireRoles("admin"))(myHandler)
	get := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/admin", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	c := iss.Claims("user-1") // valid claims: iss, aud, iat, exp, jti, sid
	c.Roles = []string{"admin"}
	token := iss.Mint(t, c) // a signed at+jwt
	if rec := get(token); rec.Code != http.StatusOK || rec.Body.String() != "hello user-1\n" {
		t.Fatalf("valid token: %d %q, want 200 and the greeting", rec.Code, rec.Body)
	}

	revs.Add(revocation.Event{ID: "e1", Issuer: iss.URL, Subject: "user-1",
		SessionID: c.SessionID, At: time.Now()})
	if rec := get(token); rec.Code != http.StatusUnauthorized ||
		!strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token: %d %q, want 401 invalid_token", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

// docs/sdk.md: end
