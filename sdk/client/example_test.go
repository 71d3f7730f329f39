package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"golang.org/x/oauth2"

	"github.com/jotguard/jotguard/sdk/client"
)

// Register, log in, then call an API behind a jotguard verifier with an
// http.Client that attaches the access token and refreshes it before it
// expires; log out at the end. It needs the issuer, so it is compiled but not
// run.
func ExampleClient_Session() {
	// docs/sdk.md: client
	ctx := context.Background()
	cl := client.New("http://127.0.0.1:8080")
	_, err := cl.Register(ctx, client.RegisterRequest{Email: "ada@example.com", Password: "correct horse battery staple"})
	if err != nil && !client.HasCode(err, client.CodeEmailTaken) {
		log.Fatal(err)
	}
	tok, err := cl.Login(ctx, client.LoginRequest{Email: "ada@example.com", Password: "correct horse battery staple"})
	switch {
	case client.HasCode(err, client.CodeInvalidCredentials):
		log.Fatal("wrong email or password")
	case err != nil:
		log.Fatal(err)
	}

	sess := cl.Session(tok, // refreshes the access token before it expires
		client.WithOrigins("http://127.0.0.1:8081")) // where the token may go, besides the issuer
	hc := sess.HTTPClient() // requests to those origins carry Authorization: Bearer …
	resp, err := hc.Get("http://127.0.0.1:8081/hello")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)

	if err := sess.Logout(ctx, "local"); err != nil { // or "global", "others"
		log.Fatal(err)
	}
	// docs/sdk.md: end
}

// Errors are RFC 9457 problems with a stable code.
func ExampleProblem() {
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"type":"about:blank","title":"Conflict","status":409,"detail":"email already registered","code":"email_taken"}`)
	}))
	defer issuer.Close()

	_, err := client.New(issuer.URL).Register(context.Background(),
		client.RegisterRequest{Email: "ada@example.com", Password: "correct horse battery"})
	var p *client.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Code)
	}
	fmt.Println(client.HasCode(err, client.CodeEmailTaken))
	fmt.Println(err)
	// Output:
	// 409 email_taken
	// true
	// register: jotguard issuer: 409 email_taken: email already registered
}

// A service account calls a service behind a jotguard verifier: its token
// source gets access tokens with the client credentials grant and a new
// one shortly before each expires. It needs the issuer, so it is compiled
// but not run.
func ExampleClient_ServiceTokenSource() {
	// docs/sdk.md: service account
	ctx := context.Background()
	cl := client.New("http://127.0.0.1:8080")
	// The id and secret printed by `issuer clients create` (or answered by
	// cl.CreateServiceAccount): the secret is shown once.
	src := cl.ServiceTokenSource(ctx, os.Getenv("CLIENT_ID"), os.Getenv("CLIENT_SECRET"))
	hc := oauth2.NewClient(ctx, src) // every request carries Authorization: Bearer …
	resp, err := hc.Get("http://127.0.0.1:8081/reports")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// docs/sdk.md: end
}
