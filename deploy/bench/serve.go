package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// serveMain runs one of the bench's own servers, started as a subprocess so
// that taskset can pin it:
//
//	bare     a bare net/http handler answering 200 "ok" (also the upstream
//	         of the verifier's reverse-proxy mode, measured directly)
//	jwt      sdk.Middleware around the same handler: a local Verify per
//	         request, with the sdk's verified-token cache (--kafka: the
//	         kafkafeed revocation consumer the verifier uses)
//	session  a server-side session: one Redis GET per request, keyed by the
//	         "sid" cookie
func serveMain(args []string) error {
	if len(args) == 0 {
		return errors.New("serve: bare|jwt|session")
	}
	kind := args[0]
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	issuer := fs.String("issuer", "", "jwt: iss and JWKS base URL")
	brokers := fs.String("kafka", "", "jwt: Kafka brokers for revocations")
	topic := fs.String("topic", "jotguard.revocations", "jwt: revocation topic")
	redisURL := fs.String("redis", "", "session: Redis URL")
	_ = fs.Parse(args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var h http.Handler
	var err error
	switch kind {
	case "bare":
		h = http.HandlerFunc(serveOK)
	case "jwt":
		h, err = jwtHandler(ctx, *issuer, *brokers, *topic)
	case "session":
		h, err = sessionHandler(*redisURL)
	default:
		return fmt.Errorf("serve: unknown server %q", kind)
	}
	if err != nil {
		return err
	}
	return listenAndServe(ctx, *addr, h)
}

// serveOK is the bare handler: 200 "ok".
func serveOK(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}

// jwtHandler is sdk.Middleware around serveOK, verifying tokens of issuer;
// with brokers, its Verifier runs the kafkafeed of topic.
func jwtHandler(ctx context.Context, issuer, brokers, topic string) (http.Handler, error) {
	// The bench's issuers mint tokens for accessTTL, longer than the default
	// the sdk accepts: the verifier is told so too (JOTGUARD_ACCESS_TTL).
	ttl, _ := time.ParseDuration(accessTTL)
	cfg := sdk.Config{Issuer: issuer, Audience: []string{"jotguard"}, CacheSize: sdk.DefaultCacheSize, MaxTokenLifetime: ttl}
	if brokers != "" {
		replay := sdk.Retention(ttl, 30*time.Second)
		feed, err := kafkafeed.New(kafkafeed.Config{Brokers: strings.Split(brokers, ","), Topic: topic,
			Replay: replay, Set: revocation.NewSet(replay, nil)})
		if err != nil {
			return nil, err
		}
		cfg.Revocations = feed // the Verifier runs it with its keys
	}
	v, err := sdk.NewVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return sdk.Middleware(v)(http.HandlerFunc(serveOK)), nil
}

// sessionKey is the Redis key of server-side session id.
func sessionKey(id string) string { return "bench:sess:" + id }

// sessionHandler answers serveOK to a request whose "sid" cookie names a
// session stored in the Redis at redisURL (sessionServerSetup).
func sessionHandler(redisURL string) (http.Handler, error) {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(o)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("sid")
		if err != nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		v, err := rdb.Get(r.Context(), sessionKey(c.Value)).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var s struct{ Sub string }
		if json.Unmarshal(v, &s) != nil || s.Sub == "" {
			http.Error(w, "bad session", http.StatusUnauthorized)
			return
		}
		serveOK(w, r)
	}), nil
}

// listenAndServe serves h, and /readyz, on addr until ctx is done.
func listenAndServe(ctx context.Context, addr string, h http.Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ready\n") })
	mux.Handle("/", h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.NewTextHandler(os.Stderr, nil), slog.LevelWarn)}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sessionServerSetup stores n sessions for the Redis-session server.
func sessionServerSetup(ctx context.Context, redisURL, tag string, n int) ([]string, error) {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d-%s", i, tag)
		v, _ := json.Marshal(map[string]any{"Sub": fmt.Sprint("user-", i), "Email": "x@bench.example", "Roles": []string{"user"}})
		if err := rdb.Set(ctx, sessionKey(ids[i]), v, time.Hour).Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
