package app_test

// Delivery of queued revocation events: once Kafka is reachable
// again, queued events reach the topic within 2 s, and the events of a
// replica that crashed are delivered by another within 5 s.
//
// The tests log each delay and fail only past a generous bound, which
// catches a relay that waits out long backoffs or leases, not a slow
// machine. JOTGUARD_DELIVERY_TRIES=N repeats each measurement N times and
// logs p50, p99 and max: docs/operations.md quotes such a run.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/mongostore"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// With Kafka stopped a logout queues its event; once a broker is back on the
// same address the event reaches the topic soon (within 2 s), however
// long the outage lasted.
func TestQueuedEventReachesKafkaSoonAfterItIsBack(t *testing.T) {
	s, b := startIssuerWithBroker(t, map[string]string{"JOTGUARD_KAFKA_ACK_TIMEOUT": "500ms"})
	brokers, topic := s.cfg.KafkaBrokers, s.cfg.RevocationTopic
	email := s.register(pw)
	var delays []time.Duration
	for i := range deliveryTries(t) {
		c, since, before := s.logoutWithKafkaDown(b, email)
		// The first outage is long enough for a relay that backs off
		// exponentially to be waiting seconds; the others vary its phase.
		time.Sleep(outage(i))
		back := restartBroker(t, b)
		got := waitTopicGrows(t, brokers, topic, before)
		delays = append(delays, got.Sub(back))
		t.Logf("try %d: outage %s, event on the topic %s after the broker accepted connections",
			i+1, outage(i), got.Sub(back).Round(time.Millisecond))
		if d := got.Sub(back); d > 5*time.Second {
			t.Errorf("try %d: the queued event reached the topic %s after the broker was back; want it within 2 s (5 s on a slow machine)", i+1, d)
		}
		s.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
	}
	report(t, "broker back → queued event on the topic", delays)
}

// An issuer killed (SIGKILL) while it holds queued events and the outbox's
// lease: a second replica on the same MongoDB database delivers them soon
// after it starts, or after Kafka is back if that is later (within 5 s),
// without waiting for a lease the dead one can no longer renew.
func TestEventsOfAKilledReplicaAreDeliveredByAnother(t *testing.T) {
	b := sdktest.StartDevstack(t, "kafka")
	var delays []time.Duration
	for i := range deliveryTries(t) {
		settings := map[string]string{"JOTGUARD_KAFKA_BROKERS": b.Addr(), "JOTGUARD_KAFKA_ACK_TIMEOUT": "500ms",
			"JOTGUARD_MONGO_DB": randName(), "JOTGUARD_REDIS_PREFIX": randName()}
		first := startIssuerProcess(t, settings)
		brokers, topic := first.cfg.KafkaBrokers, first.cfg.RevocationTopic
		c, since, before := first.logoutWithKafkaDown(b, first.register(pw))
		waitLeaseHolder(t, first.cfg)
		first.kill()
		back := restartBroker(t, b)
		start := time.Now()
		second := startIssuer(t, settings)
		ready := time.Now()
		got := waitTopicGrows(t, brokers, topic, before)
		from := start // Kafka was back before the second replica started
		if back.After(from) {
			from = back
		}
		delays = append(delays, got.Sub(from))
		t.Logf("try %d: event on the topic %s after the second replica started (ready after %s)",
			i+1, got.Sub(from).Round(time.Millisecond), ready.Sub(start).Round(time.Millisecond))
		if d := got.Sub(from); d > 12*time.Second {
			t.Errorf("try %d: the killed replica's event reached the topic %s after the second replica started; want it within 5 s (12 s on a slow machine)", i+1, d)
		}
		second.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
		second.stop()
	}
	report(t, "lease holder killed → its queued event on the topic, from the second replica's start", delays)
}

// startIssuerWithBroker runs an issuer on a Kafka broker of its own, which
// the test may stop and restart.
func startIssuerWithBroker(t *testing.T, settings map[string]string) (*issuer, *sdktest.Devstack) {
	t.Helper()
	b := sdktest.StartDevstack(t, "kafka")
	settings["JOTGUARD_KAFKA_BROKERS"] = b.Addr()
	return startIssuer(t, settings), b
}

// logoutWithKafkaDown logs a new session of email in, stops the broker b
// and logs the session out, which queues its event. It returns the
// session's claims, a time before the logout and the end offsets of the
// topic before it.
func (s *issuer) logoutWithKafkaDown(b *sdktest.Devstack, email string) (c *sdk.Claims, since time.Time, before int64) {
	s.t.Helper()
	at, rt := s.login(email, pw)
	c, _ = s.verify(at)
	since = time.Now().Add(-time.Second)
	before = topicEnd(s.t, s.cfg.KafkaBrokers, s.cfg.RevocationTopic)
	b.Stop()
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 204 {
		s.t.Fatalf("logout with Kafka down: %d %s", r.StatusCode, r.body)
	}
	return c, since, before
}

// deliveryTries is JOTGUARD_DELIVERY_TRIES, default 1.
func deliveryTries(t *testing.T) int {
	v := os.Getenv("JOTGUARD_DELIVERY_TRIES")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("JOTGUARD_DELIVERY_TRIES=%q: want a positive number", v)
	}
	return n
}

// outage is how long try i keeps Kafka down after the logout: 8 s first,
// then 1 to 8 s.
func outage(i int) time.Duration {
	if i == 0 {
		return 8 * time.Second
	}
	return time.Second + time.Duration(i*1700%7000)*time.Millisecond
}

// report logs p50, p99 and max of delays.
func report(t *testing.T, what string, delays []time.Duration) {
	t.Helper()
	s := slices.Clone(delays)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	t.Logf("%s over %d tries: p50 %s, p99 %s, max %s", what, len(s),
		q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// restartBroker starts the stopped broker b again and returns when it first
// accepted a connection.
func restartBroker(t *testing.T, b *sdktest.Devstack) time.Time {
	t.Helper()
	accepted := make(chan time.Time, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp", b.Addr(), 100*time.Millisecond); err == nil {
				accepted <- time.Now()
				_ = c.Close()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	b.Restart()
	select {
	case at := <-accepted:
		return at
	case <-time.After(5 * time.Second):
		close(stop)
		t.Fatal("the restarted broker accepts no connection")
		return time.Time{}
	}
}

// topicEnd is the sum of the end offsets of topic's partitions.
func topicEnd(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	n, err := endOffsets(t.Context(), brokers, topic)
	if err != nil {
		t.Fatalf("kafka end offsets: %v", err)
	}
	return n
}

func endOffsets(ctx context.Context, brokers []string, topic string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: &kafka.Transport{}}
	defer cl.Transport.(*kafka.Transport).CloseIdleConnections()
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return 0, fmt.Errorf("topic %s: %+v", topic, md.Topics)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return 0, p.Error
		}
		sum += p.LastOffset
	}
	return sum, nil
}

// waitTopicGrows polls the end offsets of topic until they pass from, and
// returns when it saw that; it fails the test after a minute.
func waitTopicGrows(t *testing.T, brokers []string, topic string, from int64) time.Time {
	t.Helper()
	const bound = time.Minute
	start := time.Now()
	for {
		n, err := endOffsets(t.Context(), brokers, topic)
		if err == nil && n > from {
			return time.Now()
		}
		if time.Since(start) > bound {
			t.Fatalf("no new record on %s %s after the wait began (end offsets %d, err %v)", topic, bound, n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLeaseHolder waits until the revocation outbox of cfg holds an event
// and a relay holds its lease.
func waitLeaseHolder(t *testing.T, cfg config.Config) {
	t.Helper()
	db := issuerDB(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		queued, err := db.Collection(mongostore.RevocationOutbox).CountDocuments(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		held, err := db.Collection(mongostore.RevocationOutbox+"_lease").CountDocuments(t.Context(),
			bson.D{{Key: "until", Value: bson.D{{Key: "$gt", Value: time.Now()}}}})
		if err != nil {
			t.Fatal(err)
		}
		if queued > 0 && held > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d events queued, %d running leases; want the event queued and the lease held", queued, held)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issuerProcess is bin/issuer ($JOTGUARD_ISSUER_BIN) run as a subprocess,
// for the tests that kill it.
type issuerProcess struct {
	*issuer
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// startIssuerProcess runs bin/issuer with the test defaults and settings on
// a free port and waits until it is ready. It is killed at the end of t;
// its log is shown if t failed.
func startIssuerProcess(t *testing.T, settings map[string]string) *issuerProcess {
	t.Helper()
	bin := sdktest.RequireEnv(t, "JOTGUARD_ISSUER_BIN")
	env := issuerEnv(t, settings)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env["JOTGUARD_ISSUER_ADDR"] = ln.Addr().String()
	_ = ln.Close()
	env["JOTGUARD_LOG_LEVEL"], env["JOTGUARD_LOG_FORMAT"] = "info", "text"
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p := &issuerProcess{issuer: newClient(t, "http://"+env["JOTGUARD_ISSUER_ADDR"], cfg), done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = os.Environ()
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("bin/issuer log:\n%s", p.log.String())
			p.mu.Unlock()
		}
		dropData(cfg)
	})
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := hc.Get(p.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("bin/issuer exited before it was ready: %s", p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bin/issuer not ready after 30 s: %v", err)
		}
	}
}

func (p *issuerProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// kill sends SIGKILL and waits for the process to end.
func (p *issuerProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}
