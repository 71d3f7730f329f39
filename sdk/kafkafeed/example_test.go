package kafkafeed_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// A service verifying tokens locally, with logouts fed from Kafka. The
// Verifier runs the feed: it hands it its own key source, issuer and
// audiences, so events are authenticated exactly like access tokens, and an
// event read before the keys are loaded waits for them.
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	const (
		issuer    = "http://127.0.0.1:8080"
		accessTTL = 5 * time.Minute
		leeway    = 30 * time.Second
	)
	feed, err := kafkafeed.New(kafkafeed.Config{
		Brokers:    []string{"127.0.0.1:9092"},
		Topic:      "jotguard.revocations",
		Replay:     accessTTL + leeway, // every revocation that can still matter
		Set:        revocation.NewSet(accessTTL+leeway, time.Now),
		FailClosed: false, // JOTGUARD_REVOCATION_FAILURE=open
		Logger:     slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: issuer, Audience: []string{"jotguard"},
		Leeway: leeway, Revocations: feed, CacheSize: sdk.DefaultCacheSize})
	if err != nil {
		log.Fatal(err)
	}

	// /readyz: keys loaded and the replay caught up.
	if err := v.Ready(); err != nil {
		log.Printf("not ready yet: %v", err)
	}
	st := feed.Stats()
	log.Printf("revocation lag %d, last event %s ago, stale %v", st.Lag, st.LastEventAge, st.Stale)
}
