package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkRefresh is one refresh (POST /access_token: rotation and a
// signed access token) through the whole Echo stack, on memory stores: the
// cost of the issuer's own code on its hottest path. "off" is the issuer
// as it runs without tracing; "traced" adds what it adds with tracing on
// (the server span, sampled, batched to an exporter that drops it), but
// not the store spans.
func BenchmarkRefresh(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchmarkRefresh(b, false) })
	b.Run("traced", func(b *testing.B) { benchmarkRefresh(b, true) })
}

func benchmarkRefresh(b *testing.B, traced bool) {
	km, err := keys.NewManager(b.Context(), memstore.NewKeys(), keys.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	var api http.Handler = New(Options{Service: newTestService(b, memstore.NewUsers(), km), Issuer: "http://issuer.test",
		Logger: logging.New(io.Discard, slog.LevelInfo, "json")})
	if traced {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		api = otelhttp.NewHandler(api, "", otelhttp.WithTracerProvider(tp))
	}
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
