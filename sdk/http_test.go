package sdk_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestMiddleware(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	revs := sdktest.NewRevocations(nil)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = revs })
	mint := func(edit func(*sdk.Claims)) string {
		c := iss.Claims("user-1")
		c.Roles = []string{"reader"}
		if edit != nil {
			edit(&c)
		}
		return iss.Mint(t, c)
	}
	revoked := iss.Claims("user-9")
	revs.Add(revocation.Event{ID: "e", Issuer: iss.URL, Subject: "user-9", SessionID: revoked.SessionID, At: revoked.IssuedAt.Time})

	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := sdk.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, c.Subject)
	})
	const invalid = `Bearer error="invalid_token", error_description=`
	tests := []struct {
		name      string
		opts      []sdk.MiddlewareOption
		header    []string // Authorization values
		query     string
		status    int
		challenge string
		body      string
	}{
		{name: "valid", header: []string{"Bearer " + mint(nil)}, status: 200, body: "user-1"},
		{name: "scheme is case-insensitive", header: []string{"bEaReR " + mint(nil)}, status: 200, body: "user-1"},
		{name: "no header", status: 401, challenge: "Bearer"},
		{name: "token in the query is ignored", query: "?access_token=" + mint(nil), status: 401, challenge: "Bearer"},
		{name: "basic auth", header: []string{"Basic dXNlcjpwYXNz"}, status: 401, challenge: "Bearer"},
		{name: "Bearer without token", header: []string{"Bearer"}, status: 401, challenge: invalid + `"malformed token"`},
		{name: "two headers", header: []string{"Bearer " + mint(nil), "Bearer " + mint(nil)}, status: 401, challenge: invalid + `"malformed token"`},
		{name: "garbage", header: []string{"Bearer a.b.c"}, status: 401, challenge: invalid + `"malformed token"`},
		{name: "not a b64token", header: []string{`Bearer "quoted"`}, status: 401, challenge: invalid + `"malformed token"`},
		{name: "expired", header: []string{"Bearer " + mint(func(c *sdk.Claims) {
			c.ExpiresAt.Time = c.IssuedAt.Add(-time.Hour)
			c.IssuedAt.Time = c.IssuedAt.Add(-2 * time.Hour)
		})}, status: 401, challenge: invalid + `"token expired"`},
		{name: "wrong audience", header: []string{"Bearer " + mint(func(c *sdk.Claims) { c.Audience = []string{"billing"} })},
			status: 401, challenge: invalid + `"wrong audience"`},
		{name: "revoked", header: []string{"Bearer " + iss.Mint(t, revoked)}, status: 401, challenge: invalid + `"token revoked"`},
		{name: "role held", opts: []sdk.MiddlewareOption{sdk.RequireRoles("admin", "reader")},
			header: []string{"Bearer " + mint(nil)}, status: 200, body: "user-1"},
		{name: "role missing", opts: []sdk.MiddlewareOption{sdk.RequireRoles("admin")},
			header: []string{"Bearer " + mint(nil)}, status: 403,
			challenge: `Bearer error="insufficient_scope", error_description="insufficient scope"`},
		{name: "required audience held", opts: []sdk.MiddlewareOption{sdk.RequireAudience("jotguard")},
			header: []string{"Bearer " + mint(nil)}, status: 200, body: "user-1"},
		{name: "required audience missing", opts: []sdk.MiddlewareOption{sdk.RequireAudience("billing")},
			header: []string{"Bearer " + mint(func(c *sdk.Claims) { c.Audience = []string{"jotguard", "other"} })},
			status: 401, challenge: invalid + `"wrong audience"`},
		{name: "custom error handler", opts: []sdk.MiddlewareOption{sdk.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprint(w, errors.Is(err, sdk.ErrMissingToken))
		})}, status: http.StatusTeapot, body: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(sdk.Middleware(v, tt.opts...)(echo))
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/x"+tt.query, nil)
			for _, h := range tt.header {
				req.Header.Add("Authorization", h)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			b := strings.TrimSpace(string(raw))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, b)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.body != "" && b != tt.body {
				t.Fatalf("body %q, want %q", b, tt.body)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		err       error
		status    int
		challenge string
	}{
		{sdk.ErrMissingToken, 401, "Bearer"},
		{fmt.Errorf("%w: x", sdk.ErrExpired), 401, `Bearer error="invalid_token", error_description="token expired"`},
		{fmt.Errorf("%w: \"quoted\" cause", sdk.ErrWrongType), 401, `Bearer error="invalid_token", error_description="not an access token"`},
		{sdk.ErrTooLarge, 401, `Bearer error="invalid_token", error_description="token too large"`},
		{sdk.ErrInsufficientScope, 403, `Bearer error="insufficient_scope", error_description="insufficient scope"`},
		{fmt.Errorf("%w: feed stale", sdk.ErrRevocationUnavailable), 503, ""},
		{sdk.ErrNotReady, 503, ""},
		{errors.New("something else"), 401, `Bearer error="invalid_token", error_description="invalid token"`},
	}
	for _, tt := range tests {
		status, challenge := sdk.Challenge(tt.err)
		if status != tt.status || challenge != tt.challenge {
			t.Errorf("Challenge(%v) = %d, %q; want %d, %q", tt.err, status, challenge, tt.status, tt.challenge)
		}
	}
}

func TestMiddlewareUnavailable(t *testing.T) {
	iss := sdktest.NewIssuer(t)
	v := iss.Verifier(t, func(c *sdk.Config) { c.Revocations = errChecker{} })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+iss.Mint(t, iss.Claims("u")))
	sdk.Middleware(v)(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("got %d %v, want 503 with Retry-After and no challenge", rec.Code, rec.Header())
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr error
	}{
		{in: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{in: []string{"BEARER abc"}, want: "abc"},
		{in: []string{"Bearer  abc"}, want: "abc"},
		{in: nil, wantErr: sdk.ErrMissingToken},
		{in: []string{"Basic x"}, wantErr: sdk.ErrMissingToken},
		{in: []string{"Bearer"}, wantErr: sdk.ErrMalformed},
		{in: []string{"Bearer "}, wantErr: sdk.ErrMalformed},
		{in: []string{"Bearer a b"}, wantErr: sdk.ErrMalformed},
		{in: []string{"Bearer a", "Bearer b"}, wantErr: sdk.ErrMalformed},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.in {
			h.Add("Authorization", v)
		}
		got, err := sdk.BearerToken(h)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
