package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/jotguard/jotguard/sdk"
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
