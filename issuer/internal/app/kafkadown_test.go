package app_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// broker is one dev stack service of the test's own (`devstack --only
// kafka` or `--only mongo`), on a fixed port and data directory so it comes
// back as it was.
type broker struct {
	t         *testing.T
	bin, data string
	only      string // kafka (default) or mongo
	port      int
	cmd       *exec.Cmd
}

func (b *broker) start() {
	b.t.Helper()
	if b.only == "" {
		b.only = "kafka"
	}
	cmd := exec.Command(b.bin, "--only", b.only, "--"+b.only+"-port", fmt.Sprint(b.port), "--data", b.data)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start %s: %v", b.bin, err)
	}
	b.cmd = cmd
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if !found && strings.HasPrefix(sc.Text(), "export JOTGUARD_") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			b.t.Fatal("devstack --only " + b.only + " exited before it was ready")
		}
	case <-time.After(60 * time.Second):
		b.stop()
		b.t.Fatal("devstack --only " + b.only + " not ready after 60s")
	}
}

func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	b.cmd = nil
}

// With Kafka down a logout still answers 204 (the event waits in the
// outbox), and the event arrives once a broker is back on the same address.
func TestKafkaDownLogoutStillSucceeds(t *testing.T) {
	b := &broker{t: t, bin: sdktest.RequireEnv(t, "JOTGUARD_DEVSTACK_BIN"), port: freePort(t), data: t.TempDir()}
	b.start()
	t.Cleanup(b.stop)
	s := startIssuer(t, map[string]string{"JOTGUARD_KAFKA_BROKERS": fmt.Sprintf("127.0.0.1:%d", b.port),
		"JOTGUARD_KAFKA_ACK_TIMEOUT": "500ms"})
	since := time.Now().Add(-2 * time.Second)
	email := s.register(pw)
	at, rt := s.login(email, pw)
	c, _ := s.verify(at)

	b.stop()
	if r := s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt); r.StatusCode != 204 {
		t.Fatalf("logout with Kafka down: %d %s", r.StatusCode, r.body)
	}
	if r := s.refresh(rt); r.StatusCode != 401 {
		t.Fatalf("refresh after logout: %d", r.StatusCode)
	}
	b.start()
	s.waitEvents(since, c.Subject, map[string]string{c.SessionID: revocation.ReasonLogout})
}
