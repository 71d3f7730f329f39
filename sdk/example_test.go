package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func ExampleNewVerifier() {
	// sdktest stands in for the issuer: a key, its JWKS, and token minting.
	iss, err := sdktest.StartIssuer()
	if err != nil {
		panic(err)
	}
	defer iss.Close()

	ctx, cancel := context.WithCancel(context.Background()) // the process's root context
	defer cancel()
	v, err := sdk.NewVerifier(ctx, sdk.Config{
		Issuer:   iss.URL, // e.g. https://auth.example.com; JWKS at /.well-known/jwks.json
		Audience: []string{"jotguard"},
	})
	if err != nil {
		panic(err)
	}

	claims, err := v.Verify(ctx, iss.Mint(nil, iss.Claims("user-42")))
	fmt.Println(claims.Subject, err)

	_, err = v.Verify(ctx, "not.a.token")
	fmt.Println(errors.Is(err, sdk.ErrMalformed))
	// Output:
	// user-42 <nil>
	// true
}

// Verify's errors wrap exactly one sentinel: tell them apart with errors.Is.
func ExampleVerifier_Verify() {
	iss, err := sdktest.StartIssuer()
	if err != nil {
		panic(err)
	}
	defer iss.Close()
	revs := sdktest.NewRevocations(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"}, Revocations: revs})
	if err != nil {
		panic(err)
	}

	expired := iss.Claims("ada")
	expired.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-55 * time.Minute))
	loggedOut := iss.Claims("ada")
	revs.Add(revocation.Event{ID: "evt-1", Issuer: iss.URL, Subject: "ada", SessionID: loggedOut.SessionID,
		At: time.Now()})
	elsewhere := iss.Claims("ada")
	elsewhere.Audience = jwt.ClaimStrings{"billing"}

	for _, c := range []sdk.Claims{iss.Claims("ada"), expired, loggedOut, elsewhere} {
		token := iss.Mint(nil, c)
		// docs/sdk.md: errors
		claims, err := v.Verify(ctx, token)
		switch {
		case err == nil:
			fmt.Println("hello", claims.Subject)
		case errors.Is(err, sdk.ErrExpired):
			fmt.Println("expired: ask the client to refresh")
		case errors.Is(err, sdk.ErrRevoked):
			fmt.Println("revoked: the session ended")
		case errors.Is(err, sdk.ErrWrongAudience), errors.Is(err, sdk.ErrSignature):
			fmt.Println("not a token for this service")
		default:
			fmt.Println("rejected:", err)
		}
		// docs/sdk.md: end
	}
	// Output:
	// hello ada
	// expired: ask the client to refresh
	// revoked: the session ended
	// not a token for this service
}

func ExampleMiddleware() {
	iss, err := sdktest.StartIssuer()
	if err != nil {
		panic(err)
	}
	defer iss.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: iss.URL, Audience: []string{"jotguard"}})
	if err != nil {
		panic(err)
	}

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := sdk.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})
	srv := httptest.NewServer(sdk.Middleware(v, sdk.RequireRoles("reader"))(hello))
	defer srv.Close()

	get := func(token string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %q %q\n", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	reader := iss.Claims("ada")
	reader.Roles = []string{"reader"}
	get(iss.Mint(nil, reader))
	get("")
	get(iss.Mint(nil, iss.Claims("bob"))) // no role
	// Output:
	// 200 "" "hello ada"
	// 401 "Bearer" "Unauthorized\n"
	// 403 "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\"" "Forbidden\n"
}

func ExampleChallenge() {
	status, challenge := sdk.Challenge(fmt.Errorf("%w: exp 2025-01-02", sdk.ErrExpired))
	fmt.Println(status, challenge)
	// Output: 401 Bearer error="invalid_token", error_description="token expired"
}
