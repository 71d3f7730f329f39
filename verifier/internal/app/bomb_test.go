package app_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A compressed record of a few KiB that inflates to 150 MiB, on every
// partition, before a revocation: the verifier replays past them within a
// few MiB of memory (it took a verifier from 19 MB to 1 GB, and more on
// every restart), counts them as rejected, applies the revocation behind
// one of them, and keeps answering.
func TestCompressionBombOnTheTopic(t *testing.T) {
	const topic, partitions, bomb = "jotguard.revocations.bomb", 6, 150 << 20
	b := startBroker(t, topic)
	iss := sdktest.NewIssuer(t)
	alice := iss.Claims("alice")
	alice.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	revoked, kept := iss.Mint(t, alice), iss.Mint(t, iss.Claims("bob"))

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: topic, RequiredAcks: kafka.RequireAll,
		Compression: kafka.Zstd, BatchBytes: bomb + 1<<20, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { n, _ := strconv.Atoi(string(m.Key)); return n })}
	zeros := make([]byte, bomb) // never written: no memory behind it until read
	for p := range partitions {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(strconv.Itoa(p)), Value: zeros}); err != nil {
			t.Fatalf("write a bomb to partition %d: %v", p, err)
		}
	}
	w.Balancer = &kafka.Hash{}
	w.Compression = 0
	now := time.Now()
	set := iss.RevocationSET(t, revocation.Event{ID: "evt-after-bomb", Issuer: iss.URL, Subject: "alice",
		At: now, IssuedAt: now, Reason: revocation.ReasonAdmin, Initiator: "admin"})
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("alice"), Value: set, Time: now}); err != nil {
		t.Fatalf("write the revocation: %v", err)
	}
	_ = w.Close()

	rss0 := rss(t)
	heap0 := heapObjects()
	peak := heap0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, heapObjects())
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	v := startVerifier(t, map[string]string{"JOTGUARD_ISSUER": iss.URL, "JOTGUARD_KAFKA_BROKERS": b.Addr,
		"JOTGUARD_REVOCATION_TOPIC": topic})
	waitReady(t, v, 30*time.Second)
	close(stop)
	<-sampled
	heap, rssGrowth := peak-min(peak, heap0), rss(t)-min(rss0, rss(t))
	t.Logf("replaying %d bombs of %d MiB: Go heap +%d MiB at the peak, RSS +%d MiB once collected",
		partitions, bomb>>20, heap>>20, rssGrowth>>20)
	if heap > 64<<20 {
		t.Errorf("the Go heap grew by %d MiB, want at most 64", heap>>20)
	}
	if code := v.check(t, revoked); code != 401 {
		t.Errorf("token revoked behind a bomb: %d, want 401", code)
	}
	if code := v.check(t, kept); code != 200 {
		t.Errorf("another user's token: %d, want 200", code)
	}
	if got := v.metric(t, "jotguard_verifier_revocation_events_rejected_total"); got != strconv.Itoa(partitions) {
		t.Errorf("rejected events = %q, want %d (the bombs)", got, partitions)
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rss is the process's resident memory, after a collection that returns
// what it can to the system.
func rss(t *testing.T) uint64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}
