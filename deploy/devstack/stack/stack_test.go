package stack

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary run Mailpit when Start re-executes it.
func TestMain(m *testing.M) {
	RunChild()
	os.Exit(m.Run())
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestStartSubsetAndClose starts only the servers asked for, reports their
// settings, and Close frees their ports.
func TestStartSubsetAndClose(t *testing.T) {
	for _, tc := range []struct {
		services []string
		redis    string
		want     []string
	}{
		{[]string{Redis}, "embedded", []string{"JOTGUARD_REDIS_URL="}},
		{[]string{Kafka}, "", []string{"JOTGUARD_KAFKA_BROKERS=", "JOTGUARD_REVOCATION_TOPIC=jotguard.revocations"}},
	} {
		s, err := Start(t.Context(), Options{Services: tc.services, RedisMode: tc.redis, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("Start(%v): %v", tc.services, err)
		}
		env := s.Env()
		if len(env) != len(tc.want) {
			t.Fatalf("Env() = %v, want %d entries", env, len(tc.want))
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(env[i], w) {
				t.Errorf("Env()[%d] = %q, want prefix %q", i, env[i], w)
			}
		}
		_, addr, _ := strings.Cut(env[0], "=")
		addr = strings.TrimSuffix(strings.TrimPrefix(addr, "redis://"), "/0")
		s.Close()
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%v: %s still accepts connections after Close", tc.services, addr)
		}
	}
}

func TestStartRejectsUnknownService(t *testing.T) {
	if _, err := Start(t.Context(), Options{Services: []string{"postgres"}, Logger: quietLogger()}); err == nil {
		t.Fatal("Start with an unknown service: want an error")
	}
}

func TestRedisServerRequiredButMissing(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err == nil {
		t.Skip("redis-server is on PATH; this case needs it missing")
	}
	_, err := Start(context.Background(), Options{Services: []string{Redis}, RedisMode: "server", Logger: quietLogger()})
	if err == nil {
		t.Fatal("RedisMode server without redis-server: want an error")
	}
}

// A Redis Cluster: three masters that share all 16384 slots, their
// addresses as the comma list the issuer reads as a Cluster; Close stops
// every node.
func TestRedisCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH; .ci/run installs it")
		}
		t.Skip("a Redis Cluster needs redis-server on PATH")
	}
	s, err := Start(t.Context(), Options{Services: []string{Redis}, RedisCluster: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addrs := strings.Split(s.RedisURL, ",")
	if len(addrs) != ClusterNodes || s.RedisKind != "redis-cluster" {
		t.Fatalf("RedisURL %q (%s): want %d addresses", s.RedisURL, s.RedisKind, ClusterNodes)
	}
	for _, a := range addrs {
		info, err := redisCommand(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_assigned:16384") ||
			!strings.Contains(info, "cluster_size:3") {
			t.Fatalf("CLUSTER INFO of %s: %v\n%s", a, err, info)
		}
	}
	s.Close()
	for _, a := range addrs {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("cluster node %s still accepts connections after Close", a)
		}
	}
}
