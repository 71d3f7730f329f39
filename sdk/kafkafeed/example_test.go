package kafkafeed_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// A net/http service verifying tokens in-process, with logouts fed from
// Kafka: the quick start of docs/sdk.md. It needs the issuer and a broker, so
// it is compiled but not run.
func ExampleNew() {
	// docs/sdk.md: quick start
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	const issuer = "http://127.0.0.1:8080"
	ttl, leeway := 5*time.Minute, 30*time.Second // the issuer's access-token lifetime; clock skew

	// Revocations from Kafka. The Verifier runs the feed with its own key source,
	// issuer and audiences, so events are authenticated like access tokens, and
	// an event read before the keys are loaded waits for them.
	retention := sdk.Retention(ttl, leeway) // ttl + 2 × leeway: every revocation that can still matter
	feed, err := kafkafeed.New(kafkafeed.Config{
		Brokers: []string{"127.0.0.1:9092"}, Topic: "jotguard.revocations",
		Replay: retention, Set: revocation.NewSet(retention, time.Now),
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: issuer, Audience: []string{"jotguard"},
		Leeway: leeway, MaxTokenLifetime: ttl, Revocations: feed, CacheSize: sdk.DefaultCacheSize})
	if err != nil {
		log.Fatal(err)
	}

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := sdk.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s (session %s, roles %v)\n", c.Email, c.SessionID, c.Roles)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /hello", sdk.Middleware(v)(hello))
	mux.Handle("GET /admin", sdk.Middleware(v, sdk.RequireRoles("admin"))(hello)) // 403 without the role
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if v.Ready() != nil { // keys loaded and the feed's replay caught up
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})

	srv := &http.Server{Addr: "127.0.0.1:8090", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()                             // SIGINT or SIGTERM
	srv.Shutdown(context.WithoutCancel(ctx)) // lets the requests in flight finish
	// docs/sdk.md: end
}
