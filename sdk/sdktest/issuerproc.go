package sdktest

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounds of IssuerProcess's waits: a hang becomes a test failure, not a
// stuck run.
const (
	issuerReady    = 60 * time.Second // start to GET /readyz = 200
	issuerTerm     = 20 * time.Second // SIGTERM to exit (it drains for JOTGUARD_SHUTDOWN_GRACE), then SIGKILL
	issuerAttempts = 3                // starts on a fresh port when another process took the free one
)

// IssuerProcess is jotguard's issuer binary run as a subprocess of the test
// on a free loopback port, against the servers of the dev stack. It runs the
// binary named by JOTGUARD_ISSUER_BIN (`make build` writes bin/issuer, and
// `make test` sets the variable): outside the jotguard repository that
// variable is normally unset and the test is skipped (it fails when CI is
// set, like RequireEnv). The sdk's own tests use it to run sdk/client
// against the real issuer.
type IssuerProcess struct {
	// URL is the issuer's base URL, http://127.0.0.1:PORT, which is also
	// its JOTGUARD_ISSUER (the iss of its tokens).
	URL string
	// Env holds the JOTGUARD_* settings it was started with, on top of the
	// test process's environment.
	Env map[string]string

	cmd  *exec.Cmd
	done chan struct{} // closed once it exited and its output was read
	log  *tailBuffer
}

// StartIssuerProcess runs `$JOTGUARD_ISSUER_BIN` with the test's environment
// (where `make test` put the dev stack's JOTGUARD_MONGO_URI, JOTGUARD_REDIS_URL
// and JOTGUARD_KAFKA_BROKERS), test defaults and then env, and waits (at most
// 60 s) until GET /readyz answers 200. The defaults are a free port on
// 127.0.0.1 (JOTGUARD_ISSUER_ADDR, and JOTGUARD_ISSUER to match), a fresh
// JOTGUARD_MONGO_DB and JOTGUARD_REDIS_PREFIX, JOTGUARD_COOKIE_SECURE=false
// (plain http), cheap argon2id parameters, JOTGUARD_REFRESH_TTL=1h (so its
// Redis keys expire soon after the test) and text logs. The process is
// stopped in tb.Cleanup; its log (stderr) is shown if tb failed. Its MongoDB
// database is left to the dev stack, which `make test` removes.
func StartIssuerProcess(tb testing.TB, env map[string]string) *IssuerProcess {
	tb.Helper()
	bin := RequireEnv(tb, "JOTGUARD_ISSUER_BIN")
	RequireEnv(tb, "JOTGUARD_MONGO_URI")
	RequireEnv(tb, "JOTGUARD_REDIS_URL")
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("JOTGUARD_ISSUER_BIN: %v (run `make build`)", err)
	}
	name := "sdktest_" + strings.ToLower(rand.Text()[:12])
	settings := map[string]string{
		"JOTGUARD_MONGO_DB":       name,
		"JOTGUARD_REDIS_PREFIX":   name,
		"JOTGUARD_COOKIE_SECURE":  "false",
		"JOTGUARD_ARGON2_MEMORY":  "64",
		"JOTGUARD_ARGON2_TIME":    "1",
		"JOTGUARD_REFRESH_TTL":    "1h",
		"JOTGUARD_SHUTDOWN_GRACE": "5s",
		"JOTGUARD_DRAIN_DELAY":    "0s",
		"JOTGUARD_LOG_FORMAT":     "text",
	}
	maps.Copy(settings, env)
	_, fixedAddr := env["JOTGUARD_ISSUER_ADDR"]
	_, fixedURL := env["JOTGUARD_ISSUER"]

	p := &IssuerProcess{Env: settings}
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() && p.log != nil {
			if tail := p.log.String(); tail != "" {
				tb.Logf("issuer log (tail):\n%s", tail)
			}
		}
	})
	for attempt := 1; ; attempt++ {
		if !fixedAddr {
			settings["JOTGUARD_ISSUER_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(tb))
		}
		addr := settings["JOTGUARD_ISSUER_ADDR"]
		if !fixedURL {
			settings["JOTGUARD_ISSUER"] = "http://" + addr
		}
		p.URL = "http://" + addr
		err := p.start(bin)
		if err == nil {
			return p
		}
		// freePort's port was free when it looked; someone may have taken
		// it since. Only then is another start worth it.
		if fixedAddr || attempt == issuerAttempts || !strings.Contains(p.log.String(), "address already in use") {
			tb.Fatalf("issuer on %s: %v", addr, err) // the cleanup shows its log
		}
	}
}

// start runs the binary and waits for readiness; on error the process is
// stopped.
func (p *IssuerProcess) start(bin string) error {
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range p.Env {
		cmd.Env = append(cmd.Env, k+"="+v) // the last of duplicate keys wins
	}
	p.log = &tailBuffer{max: stderrTail}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.WaitDelay = devstackKill // after an exit, stop waiting for output a child holds open
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.done)

	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.After(issuerReady)
	last := "no answer"
	for {
		res, err := hc.Get(p.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			p.cmd = nil
			return fmt.Errorf("exited before it was ready (%s)", cmd.ProcessState)
		case <-deadline:
			p.Stop()
			return fmt.Errorf("GET /readyz not 200 after %s: last %s", issuerReady, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pid is the process id, 0 once stopped.
func (p *IssuerProcess) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited reports whether the process ended by itself (a crash, or killed
// from outside), not by Stop.
func (p *IssuerProcess) Exited() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return p.cmd != nil
	default:
		return false
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 20 s) and waits for
// it. Stopping a stopped IssuerProcess does nothing.
func (p *IssuerProcess) Stop() {
	if p.cmd == nil {
		return
	}
	stopProcess(p.cmd, p.done, nil, issuerTerm)
	p.cmd = nil
}
