package stack_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// requireEnv is sdktest.RequireEnv; the devstack module does not import the
// sdk, so it has its own four lines of it.
func requireEnv(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		msg := key + " is not set: run `make test`, which starts deploy/devstack"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: a missing backend fails)")
		}
		t.Skip(msg)
	}
	return v
}

// TestMongoUniqueIndex: mongo-driver v2 against the stack's MongoDB-protocol
// server creates a unique index, and a second insert of the same key is a
// duplicate-key error.
func TestMongoUniqueIndex(t *testing.T) {
	uri := requireEnv(t, "JOTGUARD_MONGO_URI")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("JOTGUARD_MONGO_URI is set but the server is unreachable: %v", err)
	}
	db := client.Database(fmt.Sprintf("test_devstack_%d", rand.Int64()))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	users := db.Collection("users")
	if _, err := users.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatalf("create unique index: %v", err)
	}
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: "u1"}, {Key: "email", Value: "a@example.com"}}); err != nil {
		t.Fatalf("first insert: %v", err)
	}
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: "u2"}, {Key: "email", Value: "a@example.com"}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second insert with the same email: err = %v, want a duplicate-key error", err)
	}
	var got bson.M
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: "u1"}}).Decode(&got); err != nil || got["email"] != "a@example.com" {
		t.Fatalf("find by _id: %v %v", got, err)
	}
	if n, err := users.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
}

// TestRedisCommands: go-redis runs SET EX, GETDEL and a Lua script.
func TestRedisCommands(t *testing.T) {
	url := requireEnv(t, "JOTGUARD_REDIS_URL")
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := t.Context()
	key := fmt.Sprintf("test:devstack:%d", rand.Int64())
	if err := rdb.Set(ctx, key, "v1", time.Minute).Err(); err != nil {
		t.Fatalf("SET EX: %v", err)
	}
	if ttl, err := rdb.TTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL = %v, %v; want within (0, 1m]", ttl, err)
	}
	if v, err := rdb.GetDel(ctx, key).Result(); err != nil || v != "v1" {
		t.Fatalf("GETDEL = %q, %v; want v1", v, err)
	}
	if _, err := rdb.Get(ctx, key).Result(); err != redis.Nil {
		t.Fatalf("GET after GETDEL: err = %v, want redis.Nil", err)
	}
	// A compare-and-swap, the shape of the refresh-rotation scripts.
	cas := redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
  return 1
end
return 0`)
	rdb.Set(ctx, key, "old", time.Minute)
	for i, want := range []int64{1, 0} {
		got, err := cas.Run(ctx, rdb, []string{key}, "old", "new", 60000).Int64()
		if err != nil || got != want {
			t.Fatalf("CAS #%d = %d, %v; want %d", i+1, got, err, want)
		}
	}
	if v, _ := rdb.Get(ctx, key).Result(); v != "new" {
		t.Fatalf("after CAS: %q, want new", v)
	}
}

// TestKafkaRoundTrip: kafka-go writes with acks=all and a reader of every
// partition, without a consumer group, positioned by timestamp, reads each
// record back.
func TestKafkaRoundTrip(t *testing.T) {
	brokers := strings.Split(requireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := requireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial %s: %v", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	if len(parts) != 6 {
		t.Fatalf("%s has %d partitions, want 6", topic, len(parts))
	}

	start := time.Now().Add(-time.Second)
	run := fmt.Sprintf("run-%d", rand.Int64())
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	want := map[string]string{}
	var msgs []kafka.Message
	for i := range 20 {
		k := fmt.Sprintf("user-%d", i)
		v := fmt.Sprintf("%s/%d", run, i)
		want[k] = v
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(v),
			Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/secevent+jwt")}}})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write with acks=all: %v", err)
	}

	got := map[string]string{}
	used := map[int]bool{}
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic,
			Partition: p.ID, MaxWait: 200 * time.Millisecond})
		if err := r.SetOffsetAt(ctx, start); err != nil {
			t.Fatalf("partition %d: seek by time: %v", p.ID, err)
		}
		// Read to the end offset seen now: what was acknowledged is there.
		last, err := lastOffset(ctx, brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for r.Offset() < last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: read: %v", p.ID, err)
			}
			if strings.HasPrefix(string(m.Value), run+"/") {
				got[string(m.Key)] = string(m.Value)
				used[p.ID] = true
				if len(m.Headers) != 1 || string(m.Headers[0].Value) != "application/secevent+jwt" {
					t.Errorf("headers = %v", m.Headers)
				}
			}
		}
		r.Close()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s: read %q, want %q", k, got[k], v)
		}
	}
	if len(used) < 2 {
		t.Errorf("20 keys landed in %d partition(s); the hash balancer should spread them", len(used))
	}
}

func lastOffset(ctx context.Context, broker, topic string, partition int) (int64, error) {
	c, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ReadLastOffset()
}
