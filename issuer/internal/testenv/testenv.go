// Package testenv gives the issuer's tests their backends from the dev
// stack. Only tests import it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var (
	clientOnce sync.Once
	client     *mongo.Client
	clientErr  error
)

// MongoDB returns a fresh database named test_<random> on the server at
// JOTGUARD_MONGO_URI, dropped when tb ends. Without the variable the test is
// skipped (it fails when CI is set); set but unreachable fails the test. One
// client serves the whole test process.
func MongoDB(tb testing.TB) *mongo.Database {
	tb.Helper()
	uri := sdktest.RequireEnv(tb, "JOTGUARD_MONGO_URI")
	clientOnce.Do(func() {
		client, clientErr = mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
		if clientErr == nil {
			clientErr = client.Ping(context.Background(), nil)
		}
	})
	if clientErr != nil {
		tb.Fatalf("JOTGUARD_MONGO_URI is set but the server is unusable: %v", clientErr)
	}
	db := client.Database("test_" + strings.ToLower(rand.Text()))
	tb.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

// RedisCluster starts a Redis Cluster of three masters from the dev stack
// (`devstack --only redis --redis-cluster`, stopped when tb ends) and
// returns its addresses as the comma list redisstore.NewClient reads as a
// Cluster. It needs JOTGUARD_DEVSTACK_BIN and redis-server on PATH: without
// them the test is skipped, and it fails when CI is set (.ci/run installs
// redis-server).
func RedisCluster(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "a Redis Cluster needs redis-server on PATH"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg + " (CI is set: .ci/run installs it)")
		}
		tb.Skip(msg)
	}
	d := sdktest.StartDevstack(tb, "redis", "--redis-cluster")
	url := d.Env("JOTGUARD_REDIS_URL")
	if strings.Count(url, ",") != 2 || strings.Contains(url, "://") {
		tb.Fatalf("devstack --redis-cluster printed JOTGUARD_REDIS_URL=%q, want three host:port", url)
	}
	return url
}

// clusterURL is the Redis Cluster's addresses while OnRedisCluster runs
// its tests; "" otherwise.
var clusterURL string

// RedisURL is the Redis a package's Redis tests run on: the dev stack's
// JOTGUARD_REDIS_URL, or, within OnRedisCluster, the Cluster's addresses
// (a comma list, which redisstore.NewClient reads as a Cluster).
func RedisURL(tb testing.TB) string {
	tb.Helper()
	if clusterURL != "" {
		return clusterURL
	}
	return sdktest.RequireEnv(tb, "JOTGUARD_REDIS_URL")
}

// A Test is one of a package's tests, run again by OnRedisCluster.
type Test struct {
	Name string
	Run  func(*testing.T)
}

// OnRedisCluster starts a Redis Cluster of three masters (RedisCluster)
// and runs tests as subtests of t with RedisURL answering its addresses.
// The tests must not be parallel.
func OnRedisCluster(t *testing.T, tests ...Test) {
	url := RedisCluster(t)
	clusterURL = url
	defer func() { clusterURL = "" }()
	for _, tt := range tests {
		t.Run(tt.Name, tt.Run)
	}
}

// KafkaTopic creates a fresh topic of 6 partitions, named prefix-<random>,
// on the broker at JOTGUARD_KAFKA_BROKERS, and returns the brokers and the
// topic. Without the variable the test is skipped (it fails when CI is
// set).
func KafkaTopic(tb testing.TB, prefix string) (brokers []string, topic string) {
	tb.Helper()
	brokers = strings.Split(sdktest.RequireEnv(tb, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic = prefix + "-" + strings.ToLower(rand.Text()[:10])
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.CreateTopics(tb.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 6, ReplicationFactor: 1}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		tb.Fatalf("create topic %s: %v", topic, err)
	}
	return brokers, topic
}

// HydraClient registers a confidential client of the dev stack's OpenID
// provider (Ory Hydra: JOTGUARD_HYDRA_URL, its admin API at
// JOTGUARD_HYDRA_ADMIN_URL) whose one redirect URI is redirect, for the
// authorization code flow with the scopes openid, email and profile. It
// returns the provider's issuer URL and the client's id and secret.
// Without the variables the test is skipped (it fails when CI is set).
func HydraClient(tb testing.TB, redirect string) (issuer, id, secret string) {
	tb.Helper()
	issuer = sdktest.RequireEnv(tb, "JOTGUARD_HYDRA_URL")
	admin := sdktest.RequireEnv(tb, "JOTGUARD_HYDRA_ADMIN_URL")
	id, secret = "test-"+strings.ToLower(rand.Text()[:12]), rand.Text()
	body, _ := json.Marshal(map[string]any{"client_id": id, "client_secret": secret, "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"scope": "openid email profile", "token_endpoint_auth_method": "client_secret_basic"})
	r, err := http.Post(admin+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("JOTGUARD_HYDRA_ADMIN_URL is set but the provider is unusable: %v", err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(r.Body)
		tb.Fatalf("hydra: create client: %s %s", r.Status, b)
	}
	return issuer, id, secret
}
