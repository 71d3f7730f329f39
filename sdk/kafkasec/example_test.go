package kafkasec_test

import (
	"log"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/revocation"
)

// A service reading the revocation topic from a managed Kafka: TLS with the
// system's roots, SASL SCRAM-SHA-512 with the password from a mounted
// secret. The Feed uses the Dialer for every request it makes.
func ExampleConfig_Dialer() {
	// docs/sdk.md: kafkasec
	sec := kafkasec.Config{
		TLS:          true,
		Mechanism:    kafkasec.ScramSHA512,
		Username:     "jotguard-verifier",
		PasswordFile: "/var/run/secrets/kafka/password",
	}
	dialer, err := sec.Dialer("my-service")
	if err != nil {
		log.Fatal(err) // names the setting: a missing file, a user without a mechanism, …
	}
	feed, err := kafkafeed.New(kafkafeed.Config{
		Brokers: []string{"b-1.example.kafka.us-east-1.amazonaws.com:9096"},
		Topic:   "jotguard.revocations",
		Replay:  6 * time.Minute,
		Set:     revocation.NewSet(6*time.Minute, time.Now),
		Dialer:  dialer,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = feed // give it to sdk.NewVerifier as Config.Revocations
	// docs/sdk.md: end
}
