package sdktest_test

import (
	"net"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// A Devstack serves on Addr, is gone after Stop and back on the same address
// after Restart.
func TestDevstackStopRestart(t *testing.T) {
	d := sdktest.StartDevstack(t, "kafka", "--topic", "sdktest-devstack", "--partitions", "1")
	if got := d.Env("JOTGUARD_KAFKA_BROKERS"); got != d.Addr() {
		t.Fatalf("Env(JOTGUARD_KAFKA_BROKERS) = %q, want Addr() %q", got, d.Addr())
	}
	dial := func() error {
		c, err := net.DialTimeout("tcp", d.Addr(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("dial a started devstack: %v", err)
	}
	d.Stop()
	if err := dial(); err == nil {
		t.Fatal("dial succeeded after Stop")
	}
	d.Stop() // twice is harmless
	d.Restart()
	if err := dial(); err != nil {
		t.Fatalf("dial after Restart: %v", err)
	}
	if got := d.Env("JOTGUARD_KAFKA_BROKERS"); got != d.Addr() {
		t.Fatalf("after Restart Env(JOTGUARD_KAFKA_BROKERS) = %q, want %q", got, d.Addr())
	}
}
