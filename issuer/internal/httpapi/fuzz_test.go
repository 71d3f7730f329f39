package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
)

// FuzzRefreshInputs: whatever the Cookie header and the body of POST
// /access_token and POST /logout hold, the API answers a 4xx problem (the
// token is unknown) and never a 5xx, and never panics.
func FuzzRefreshInputs(f *testing.F) {
	f.Add("refresh_token="+auth.NewRefreshToken(), `{"refresh_token":"x"}`)
	f.Add("refresh_token=; refresh_token=a", `{}`)
	f.Add(`refresh_token="quoted"`, `{"refresh_token":1}`)
	f.Add("a=b;;;;refresh_token=%00", "")
	f.Add(strings.Repeat("x", 5000), `{"refresh_token":"`+strings.Repeat("A", 64)+`"}`)
	svc := newTestService(f, memstore.NewUsers(), signerFunc(func() (string, error) { return "t", nil }))
	api := New(Options{Service: svc, Issuer: "http://issuer.test"})
	f.Fuzz(func(t *testing.T, cookie, body string) {
		for _, path := range []string{"/access_token", "/logout"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Cookie", cookie)
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code >= 500 || rec.Code < 400 {
				t.Fatalf("POST %s, Cookie %q, body %q: %d %s", path, cookie, body, rec.Code, rec.Body)
			}
		}
	})
}
