package kafkafeed_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// topicName is unique per test and run.
func topicName(t *testing.T) string {
	return "kafkafeed-test-" + strings.ToLower(rand.Text()[:10])
}

// sharedBroker is the dev stack's kfake; tests skip without it (fail in CI).
func sharedBroker(t *testing.T) []string {
	t.Helper()
	return strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
}

func createTopic(t *testing.T, brokers []string, topic string, partitions int) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// toPartition sends every record to one partition, so the others stay empty.
func toPartition(p int) kafka.Balancer {
	return kafka.BalancerFunc(func(_ kafka.Message, partitions ...int) int { return p })
}

func newWriter(t *testing.T, brokers []string, topic string, b kafka.Balancer) *kafka.Writer {
	t.Helper()
	if b == nil {
		b = &kafka.Hash{}
	}
	tr := &kafka.Transport{} // its own metadata cache: partitions added by a test are seen
	t.Cleanup(tr.CloseIdleConnections)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: b, Transport: tr,
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond,
		MaxAttempts: 20, WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// record is a revocation record as the issuer writes it: key sub, SET value.
func record(sub string, value []byte, at time.Time) kafka.Message {
	return kafka.Message{Key: []byte(sub), Value: value, Time: at,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(revocation.ContentType)}}}
}

// batchRecord is a batch record as the issuer writes it: no key, batch value.
func batchRecord(value []byte, at time.Time) kafka.Message {
	return kafka.Message{Value: value, Time: at,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(revocation.BatchContentType)}}}
}

func write(t *testing.T, w *kafka.Writer, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// eventually polls cond until it holds; it fails the test after a generous
// bound, which is a hang detector, not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run is the Run of f with the fixture's trust, for runFeed.
func (fx *fixture) run(f *kafkafeed.Feed) func(context.Context) error {
	return func(ctx context.Context) error { return f.Run(ctx, fx.Trust) }
}

// runFeed runs f until the test ends and checks that Run returned nil.
func runFeed(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// broker is a dedicated kfake that a test can stop and restart.
type broker struct {
	*sdktest.Devstack
	Brokers []string
	dir     string // when set, the next start uses this data directory
}

func startBroker(t *testing.T, topic string, partitions int) *broker {
	t.Helper()
	d := sdktest.StartDevstack(t, "kafka", "--topic", topic, "--partitions", fmt.Sprint(partitions))
	return &broker{Devstack: d, Brokers: strings.Split(d.Env("JOTGUARD_KAFKA_BROKERS"), ",")}
}

func (b *broker) start() {
	if b.dir != "" {
		b.RestartWithData(b.dir)
		b.dir = ""
		return
	}
	b.Restart()
}
func (b *broker) stop() { b.Stop() }
