package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
)

// BenchmarkRefresh is one refresh (POST /access_token: rotation and a
// signed access token) through the whole Echo stack, on memory stores: the
// cost of the issuer's own code on its hottest path, without tracing.
func BenchmarkRefresh(b *testing.B) {
	km, err := keys.NewManager(b.Context(), memstore.NewKeys(), keys.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	api := New(Options{Service: newTestService(b, memstore.NewUsers(), km), Issuer: "http://issuer.test",
		Logger: logging.New(io.Discard, slog.LevelInfo, "json")})
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	const login = `{"email":"bench@example.com","password":"a long enough password"}`
	if rec := post("/register", login); rec.Code != http.StatusCreated {
		b.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	rec := post("/login", login)
	refresh := ""
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			refresh = c.Value
		}
	}
	if rec.Code != http.StatusOK || refresh == "" {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := post("/access_token", `{"refresh_token":"`+refresh+`"}`)
		if rec.Code != http.StatusOK {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		refresh = ""
		for _, c := range rec.Result().Cookies() {
			if c.Name == CookieName {
				refresh = c.Value
			}
		}
	}
}
