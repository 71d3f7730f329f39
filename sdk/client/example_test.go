package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/jotguard/jotguard/sdk/client"
)

// Log in once, then call APIs behind a jotguard verifier with an http.Client
// that attaches the access token and refreshes it before it expires.
func ExampleClient_Session() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080")
	tokens, err := c.Login(ctx, client.LoginRequest{Identifier: "ada@example.com", Password: "correct horse battery"})
	if err != nil {
		log.Fatal(err)
	}
	s := c.Session(tokens,
		client.WithOrigins("http://127.0.0.1:8081"), // the token goes to the issuer and here only
		client.OnRefresh(func(t client.Tokens) {
			// persist t.RefreshToken: the previous one is dead after a rotation
		}))
	res, err := s.HTTPClient().Get("http://127.0.0.1:8081/api/orders")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	fmt.Println(res.Status)

	// End every session of this user.
	if err := s.Logout(ctx, "global"); err != nil {
		log.Fatal(err)
	}
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
