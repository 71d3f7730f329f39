package kafkafeed_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// A service verifying tokens locally, with logouts fed from Kafka.
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	const (
		issuer    = "http://127.0.0.1:8080"
		accessTTL = 5 * time.Minute
		leeway    = 30 * time.Second
	)
	audience := []string{"jotguard"}

	// Events are signed with the issuer's keys: the same JWKS as the access
	// tokens. The Verifier needs the feed and the feed needs the Verifier's
	// keys, so the SET verifier looks the keyfunc up when an event arrives,
	// which is after Run starts, which is after v is set.
	var v *sdk.Verifier
	keys := func(t *jwt.Token) (any, error) { return v.Keyfunc()(t) }

	feed, err := kafkafeed.New(kafkafeed.Config{
		Brokers:    []string{"127.0.0.1:9092"},
		Topic:      "jotguard.revocations",
		Replay:     accessTTL + leeway, // every revocation that can still matter
		Events:     revocation.NewSETVerifier(keys, issuer, audience, nil),
		Set:        revocation.NewSet(accessTTL+leeway, time.Now),
		FailClosed: false, // JOTGUARD_REVOCATION_FAILURE=open
		Logger:     slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err = sdk.NewVerifier(ctx, sdk.Config{Issuer: issuer, Audience: audience,
		Leeway: leeway, Revocations: feed})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = feed.Run(ctx) }() // returns nil when ctx is done

	// /readyz: keys loaded and the replay caught up.
	ready := func() error {
		if err := v.Ready(); err != nil {
			return err
		}
		return feed.Ready()
	}
	_ = ready
	st := feed.Stats()
	log.Printf("revocation lag %d, last event %s ago, stale %v", st.Lag, st.LastEventAge, st.Stale)
}
