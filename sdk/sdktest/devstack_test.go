package sdktest_test

import (
	"net"
	"strings"
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

// StartDevstack("mail") fixes both of Mailpit's ports: Addr is the SMTP
// server, and a Restart brings back the same SMTP and Mailpit URLs.
func TestDevstackMailStopRestart(t *testing.T) {
	d := sdktest.StartDevstack(t, "mail")
	smtpURL, mailpit := d.Env("JOTGUARD_SMTP_URL"), d.Env("JOTGUARD_MAILPIT_URL")
	if smtpURL != "smtp://"+d.Addr() || !strings.HasPrefix(mailpit, "http://127.0.0.1:") {
		t.Fatalf("JOTGUARD_SMTP_URL=%q JOTGUARD_MAILPIT_URL=%q, want smtp://%s and http://127.0.0.1:…", smtpURL, mailpit, d.Addr())
	}
	addrs := []string{d.Addr(), strings.TrimPrefix(mailpit, "http://")}
	dial := func() error {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 5*time.Second)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
	if err := dial(); err != nil {
		t.Fatalf("dial a started devstack: %v", err)
	}
	d.Stop()
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s succeeded after Stop", a)
		}
	}
	d.Restart()
	if err := dial(); err != nil {
		t.Fatalf("dial after Restart: %v", err)
	}
	if d.Env("JOTGUARD_SMTP_URL") != smtpURL || d.Env("JOTGUARD_MAILPIT_URL") != mailpit {
		t.Fatalf("after Restart JOTGUARD_SMTP_URL=%q JOTGUARD_MAILPIT_URL=%q, want %q and %q",
			d.Env("JOTGUARD_SMTP_URL"), d.Env("JOTGUARD_MAILPIT_URL"), smtpURL, mailpit)
	}
}
