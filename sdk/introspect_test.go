package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// The local introspection endpoint: the caller must be a service account,
// and the token asked about is judged by the Verifier alone, revocations
// included.
func TestIntrospectionHandler(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	revs := sdktest.NewRevocations(nil)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	srv := httptest.NewServer(sdk.IntrospectionHandler(v))
	t.Cleanup(srv.Close)

	svc := iss.Mint(t, iss.ServiceClaims("svc-gateway"))
	userClaims := iss.Claims("user-1")
	userClaims.Email, userClaims.Roles = "ann@example.com", []string{"editor"}
	user := iss.Mint(t, userClaims)
	dead := iss.Claims("user-2")
	revs.Add(revocation.Event{ID: "e1", Issuer: iss.URL, Subject: "user-2", SessionID: dead.SessionID, At: time.Now()})
	expired := iss.Claims("user-3")
	expired.IssuedAt.Time, expired.ExpiresAt.Time = time.Now().Add(-10*time.Minute), time.Now().Add(-5*time.Minute)

	post := func(bearer, contentType, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	const form = "application/x-www-form-urlencoded"
	ask := func(token string) sdk.Introspection {
		t.Helper()
		code, hdr, body := post(svc, form, url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode())
		if code != http.StatusOK || hdr.Get("Cache-Control") != "no-store" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("introspect: %d %v %s", code, hdr, body)
		}
		var in sdk.Introspection
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		return in
	}

	got := ask(user)
	if !got.Active || got.Subject != "user-1" || got.SessionID != userClaims.SessionID || got.Email != "ann@example.com" ||
		got.EmailVerified == nil || got.TokenType != "Bearer" || got.ExpiresAt != userClaims.ExpiresAt.Unix() ||
		fmt.Sprint(got.Roles) != "[editor]" || fmt.Sprint(got.Audience) != "[jotguard]" || got.Issuer != iss.URL {
		t.Errorf("a live user token: %+v", got)
	}
	if got := ask(svc); !got.Active || got.Subject != "svc-gateway" || got.ClientID != "svc-gateway" || got.SessionID != "" || got.EmailVerified != nil {
		t.Errorf("a service account's token: %+v", got)
	}
	for name, tok := range map[string]string{
		"revoked": iss.Mint(t, dead), "expired": iss.Mint(t, expired), "garbage": "not-a-token",
		"refresh-token-like": strings.Repeat("A", 64), "oversized": strings.Repeat("A", sdk.MaxTokenSize+1),
	} {
		code, _, body := post(svc, form, url.Values{"token": {tok}}.Encode())
		if code != http.StatusOK || strings.TrimSpace(body) != `{"active":false}` {
			t.Errorf("%s: %d %s, want 200 {\"active\":false}", name, code, body)
		}
	}

	for _, tt := range []struct {
		name, bearer, ctype, body string
		status                    int
		challenge                 string
	}{
		{"no credentials", "", form, "token=" + user, 401, "Bearer"},
		{"an invalid caller token", "garbage", form, "token=" + user, 401, `Bearer error="invalid_token"`},
		{"a revoked caller token", iss.Mint(t, dead), form, "token=" + user, 401, `Bearer error="invalid_token"`},
		{"a user's token as the caller", user, form, "token=" + user, 403, `Bearer error="insufficient_scope"`},
		{"JSON body", svc, "application/json", `{"token":"x"}`, 400, ""},
		{"no token", svc, form, "token_type_hint=access_token", 400, ""},
		{"repeated token", svc, form, "token=a&token=b", 400, ""},
		{"oversized body", svc, form, "token=" + strings.Repeat("A", 3*sdk.MaxTokenSize), 400, ""},
	} {
		code, hdr, body := post(tt.bearer, tt.ctype, tt.body)
		if code != tt.status || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), tt.challenge) || strings.Contains(body, "active") {
			t.Errorf("%s: %d %q %s, want %d %q", tt.name, code, hdr.Get("WWW-Authenticate"), body, tt.status, tt.challenge)
		}
	}
	res, err := http.Get(srv.URL + "?token=" + user)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// unknownState is a TokenChecker that cannot tell.
type unknownState struct{ svc *sdk.Claims }

func (u unknownState) Verify(_ context.Context, tok string) (*sdk.Claims, error) {
	if tok == "svc" {
		return u.svc, nil
	}
	return nil, fmt.Errorf("%w: feed down", sdk.ErrRevocationUnavailable)
}

// When the revocation state is unknown the answer is 503, not a guess.
func TestIntrospectionHandlerUnknown(t *testing.T) {
	svc := &sdk.Claims{ClientID: "svc-1"}
	svc.Subject = "svc-1"
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("token=abc"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer svc")
	sdk.IntrospectionHandler(unknownState{svc}).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
