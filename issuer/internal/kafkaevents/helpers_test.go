package kafkaevents

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/keys"
	"github.com/jotguard/jotguard/issuer/internal/memstore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/segmentio/kafka-go"
)

const testIssuer = "http://issuer.test"

var testAudience = []string{"jotguard", "other-app"}

// newOutbox returns an empty outbox: the publishers of a test share it as
// replicas share a database. storetest checks that mongostore behaves the
// same.
func newOutbox(*testing.T) *memstore.Outbox { return memstore.NewOutbox() }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newSigner(t *testing.T) *keys.Manager {
	t.Helper()
	m, err := keys.NewManager(t.Context(), memstore.NewKeys(), keys.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newPublisher(t *testing.T, cfg Config, signer Signer, outbox auth.Outbox) *Publisher {
	t.Helper()
	cfg.Audience = testAudience
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	p, err := NewPublisher(t.Context(), cfg, signer, outbox)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// broker is a dedicated Kafka-protocol broker: the dev stack with only
// kafka, on a fixed port and data directory so it can come back as it was.
type broker struct {
	*sdktest.Devstack
	addr string
}

func startBroker(t *testing.T, topic string) *broker {
	t.Helper()
	d := sdktest.StartDevstack(t, "kafka", "--topic", topic, "--partitions", "6")
	return &broker{Devstack: d, addr: d.Addr()}
}

func (b *broker) start() { b.Restart() }
func (b *broker) stop()  { b.Stop() }

// readSince reads every partition of topic from the records written at or
// after since up to the current end, one Reader per partition without a
// consumer group, as a verifier does.
func readSince(t *testing.T, brokers []string, topic string, since time.Time) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial %s: %v", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	_ = conn.Close()
	if err != nil || len(parts) == 0 {
		t.Fatalf("partitions of %s: %v (%d)", topic, err, len(parts))
	}
	var out []kafka.Message
	for _, part := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, part.ID)
		if err != nil {
			t.Fatalf("dial leader of partition %d: %v", part.ID, err)
		}
		end, err := leader.ReadLastOffset()
		_ = leader.Close()
		if err != nil {
			t.Fatalf("end offset of partition %d: %v", part.ID, err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part.ID,
			MaxWait: 200 * time.Millisecond})
		if err := r.SetOffsetAt(ctx, since); err != nil {
			_ = r.Close()
			t.Fatalf("partition %d: seek: %v", part.ID, err)
		}
		for r.Offset() >= 0 && r.Offset() < end {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("partition %d: read: %v", part.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// waitFor polls cond until it holds; a generous deadline turns a hang into
// a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkedEvent verifies one record as a consumer must: content-type header,
// SET signature against the issuer's JWKS, typ, iss, aud, event shape.
func checkedEvent(t *testing.T, jwks []byte, m kafka.Message) revocation.Event {
	t.Helper()
	if ct := contentType(m); ct != revocation.ContentType {
		t.Errorf("record header content-type = %q, want %q", ct, revocation.ContentType)
	}
	kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(jwks))
	if err != nil {
		t.Fatal(err)
	}
	var set revocation.SET
	tok, err := jwt.ParseWithClaims(string(m.Value), &set, kf.Keyfunc,
		jwt.WithValidMethods([]string{"ES256", "EdDSA", "RS256"}),
		jwt.WithIssuer(testIssuer), jwt.WithAudience("other-app"))
	if err != nil {
		t.Fatalf("SET does not verify against the JWKS: %v", err)
	}
	if tok.Header["typ"] != revocation.TokenType || tok.Header["kid"] == nil {
		t.Errorf("SET header %v, want typ %s and a kid", tok.Header, revocation.TokenType)
	}
	if !strings.Contains(string(m.Value), ".") || set.ExpiresAt != nil {
		t.Errorf("SET has exp %v", set.ExpiresAt)
	}
	e, err := set.Event()
	if err != nil {
		t.Fatalf("SET.Event(): %v", err)
	}
	return e
}

// checkedEvents verifies one record as a consumer must, whatever its
// format: a batch (no key, batch content-type) or a SET (checkedEvent).
func checkedEvents(t *testing.T, jwks []byte, m kafka.Message) []revocation.Event {
	t.Helper()
	if !revocation.IsBatch(m.Value) {
		return []revocation.Event{checkedEvent(t, jwks, m)}
	}
	if ct := contentType(m); ct != revocation.BatchContentType || len(m.Key) != 0 {
		t.Errorf("batch record: content-type %q, key %q; want %q and none", ct, m.Key, revocation.BatchContentType)
	}
	bv := revocation.NewBatchVerifier(sdk.EventTrust{Keys: sdk.NewLocalKeys(func() []byte { return jwks }),
		Issuer: testIssuer, Audience: []string{"other-app"}})
	b, err := bv.Verify(t.Context(), m.Value)
	switch {
	case errors.Is(err, sdk.ErrUnknownKey):
		return nil // another test's signer, on the shared topic; ours is missing its events then
	case err != nil:
		t.Fatalf("batch does not verify against the JWKS: %v", err)
	}
	return b.Events
}

func contentType(m kafka.Message) string {
	for _, h := range m.Headers {
		if h.Key == "content-type" {
			return string(h.Value)
		}
	}
	return ""
}

// eventsOf returns the events of user sub in msgs, in the order read, and
// how many records carried them.
func eventsOf(t *testing.T, jwks []byte, msgs []kafka.Message, sub string) (events []revocation.Event, records int) {
	t.Helper()
	for _, m := range msgs {
		if !revocation.IsBatch(m.Value) && string(m.Key) != sub {
			continue // another user's SET, maybe of another test's signer
		}
		n := len(events)
		for _, e := range checkedEvents(t, jwks, m) {
			if e.Subject == sub || e.Subject == "" && string(m.Key) == sub {
				events = append(events, e)
			}
		}
		if len(events) > n {
			records++
		}
	}
	return events, records
}

func ids(events []revocation.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// firstSeen drops repeated jtis (consumers dedupe by jti), keeping order.
func firstSeen(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
