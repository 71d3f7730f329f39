package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The non-browser surface works with golang.org/x/oauth2: a password grant,
// then a refresh through its TokenSource, then revocation.
func TestGolangOAuth2Client(t *testing.T) {
	s := startIssuer(t, nil)
	email := s.register(pw)
	conf := &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: s.base + "/oauth/token",
		AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, s.http)
	tok, err := conf.PasswordCredentialsToken(ctx, email, pw)
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Fatalf("token %+v", tok)
	}
	s.verify(tok.AccessToken)
	// An expired token makes the TokenSource refresh.
	tok.Expiry = time.Now().Add(-time.Minute)
	next, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh through TokenSource: %v", err)
	}
	if next.AccessToken == tok.AccessToken || next.RefreshToken == tok.RefreshToken || next.RefreshToken == "" {
		t.Fatalf("refresh did not rotate: %+v", next)
	}
	req, _ := http.NewRequest("GET", s.base+"/me", nil)
	next.SetAuthHeader(req)
	res, err := s.http.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/me with the refreshed token: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	if _, err := conf.PasswordCredentialsToken(ctx, email, "not the password"); err == nil {
		t.Fatal("wrong password accepted")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong password: %v, want invalid_grant", err)
	}
}
