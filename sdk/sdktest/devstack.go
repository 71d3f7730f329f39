package sdktest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of Devstack's waits: a hang becomes a test failure, not a stuck run.
const (
	devstackReady = 60 * time.Second // start to the export lines
	devstackTerm  = 30 * time.Second // SIGTERM to exit, then SIGKILL
	devstackKill  = 10 * time.Second // SIGKILL to exit, then the pipes are closed
	stderrTail    = 16 << 10         // bytes of a subprocess's log kept for a failing test
)

// Devstack is one service of jotguard's dev stack run as a subprocess of the
// test, for tests that stop a backend and bring it back. It runs the binary
// built from jotguard's deploy/devstack (`make build` writes bin/devstack),
// named by JOTGUARD_DEVSTACK_BIN: outside the jotguard repository that
// variable is normally unset and the test is skipped (it fails when CI is
// set, like RequireEnv). The sdk's own tests use it for kafkafeed.
type Devstack struct {
	tb   testing.TB
	bin  string
	only string
	args []string // all flags, including the port and --data
	port int

	mu     sync.Mutex
	env    map[string]string
	cmd    *exec.Cmd
	pipes  []io.Closer
	done   chan struct{} // closed once stdout and stderr hit EOF and Wait returned
	stderr *tailBuffer
}

// StartDevstack runs `$JOTGUARD_DEVSTACK_BIN --only only args...` and waits
// (at most 60 s) until it prints its `export JOTGUARD_…=…` lines. only is
// one service: kafka, redis, mongo or mail. Unless args hold them, it adds
// --<only>-port (for mail: --smtp-port and --mail-port) with a free port
// and --data with tb.TempDir(), so Restart brings the service back on the
// same address with the same data. Extra flags, such as --topic and
// --partitions for kafka, pass through. The process is stopped in
// tb.Cleanup; its log (stderr) is shown if tb failed.
func StartDevstack(tb testing.TB, only string, args ...string) *Devstack {
	tb.Helper()
	bin := RequireEnv(tb, "JOTGUARD_DEVSTACK_BIN")
	if only == "" || strings.Contains(only, ",") {
		tb.Fatalf("StartDevstack: only must name one service, got %q", only)
	}
	d := &Devstack{tb: tb, bin: bin, only: only, stderr: &tailBuffer{max: stderrTail}}
	for i, portFlag := range portFlags(only) {
		var port int
		if v, ok := flagValue(args, portFlag); ok {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 {
				tb.Fatalf("StartDevstack: %s %q: want a fixed port, so that Restart keeps the address", portFlag, v)
			}
			port = p
		} else {
			port = freePort(tb)
			args = append(args, portFlag, strconv.Itoa(port))
		}
		if i == 0 {
			d.port = port
		}
	}
	if _, ok := flagValue(args, "--data"); !ok {
		args = append(args, "--data", tb.TempDir())
	}
	d.args = slices.Concat([]string{"--only", only}, args)
	tb.Cleanup(func() {
		d.Stop()
		if tb.Failed() {
			if tail := d.stderr.String(); tail != "" {
				tb.Logf("devstack --only %s log (tail):\n%s", d.only, tail)
			}
		}
	})
	d.start()
	return d
}

// portFlags are the devstack flags that fix only's ports, the one of Addr
// first: mail has an SMTP server and an HTTP API.
func portFlags(only string) []string {
	if only == "mail" {
		return []string{"--smtp-port", "--mail-port"}
	}
	return []string{"--" + only + "-port"}
}

// Addr is the service's host:port on 127.0.0.1 (for mail, its SMTP
// server's; Env("JOTGUARD_MAILPIT_URL") is its HTTP API); it stays the
// same across Restart.
func (d *Devstack) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)) }

// Env returns the value of key from the export lines of the last start
// (such as JOTGUARD_KAFKA_BROKERS, JOTGUARD_MONGO_URI or
// JOTGUARD_SMTP_URL), or "" if absent.
func (d *Devstack) Env(key string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.env[key]
}

// Stop ends the process (SIGTERM, then SIGKILL after 30 s) and waits for it.
// Stopping a stopped Devstack does nothing.
func (d *Devstack) Stop() {
	d.mu.Lock()
	cmd, done, pipes := d.cmd, d.done, d.pipes
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	stopProcess(cmd, done, pipes, devstackTerm)
}

// stopProcess sends cmd SIGTERM, then SIGKILL if it has not exited after
// term, and waits until done is closed (the process exited and its output
// was read). If done stays open 10 s after the kill, a child still holds
// the pipes: they are closed so that the readers end.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, pipes []io.Closer, term time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(term):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return
	case <-time.After(devstackKill):
	}
	for _, p := range pipes {
		_ = p.Close()
	}
	<-done
}

// Restart stops the process if it runs and starts it again with the same
// flags: same port, same data directory.
func (d *Devstack) Restart() {
	d.tb.Helper()
	d.Stop()
	d.start()
}

// RestartWithData is Restart on the same port with data directory dir
// instead, such as an empty t.TempDir(): a backend that lost its data.
// Later restarts keep dir.
func (d *Devstack) RestartWithData(dir string) {
	d.tb.Helper()
	d.Stop()
	for i, a := range d.args {
		switch {
		case a == "--data" && i+1 < len(d.args):
			d.args[i+1] = dir
		case strings.HasPrefix(a, "--data="):
			d.args[i] = "--data=" + dir
		}
	}
	d.start()
}

func (d *Devstack) start() {
	d.tb.Helper()
	cmd := exec.Command(d.bin, d.args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		d.tb.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		d.tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.tb.Fatalf("start %s: %v", d.bin, err)
	}
	done := make(chan struct{})
	ready := make(chan map[string]string, 1)
	d.mu.Lock()
	d.cmd, d.done, d.pipes = cmd, done, []io.Closer{stdout, stderr}
	d.mu.Unlock()

	var readers sync.WaitGroup
	readers.Go(func() { _, _ = io.Copy(d.stderr, stderr) })
	readers.Go(func() { readExports(stdout, ready) })
	go func() {
		readers.Wait() // both pipes at EOF before Wait, which closes them
		_ = cmd.Wait()
		close(done)
	}()

	what := fmt.Sprintf("devstack %s", strings.Join(d.args, " "))
	select {
	case env := <-ready:
		if env == nil {
			d.Stop()
			d.tb.Fatalf("%s exited before it was ready; its log:\n%s", what, d.stderr.String())
		}
		d.mu.Lock()
		d.env = env
		d.mu.Unlock()
	case <-time.After(devstackReady):
		d.Stop()
		d.tb.Fatalf("%s not ready after %s; its log:\n%s", what, devstackReady, d.stderr.String())
	}
}

// readExports reads r to EOF. It sends the `export K=V` values on ready once
// the write that carried them is consumed (devstack prints them in one
// write), or nil if r ends first.
func readExports(r io.Reader, ready chan<- map[string]string) {
	br := bufio.NewReader(r)
	env := map[string]string{}
	sent := false
	for {
		line, err := br.ReadString('\n')
		if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok && !sent {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = strings.Trim(v, `"'`)
			}
		}
		if !sent && len(env) > 0 && (br.Buffered() == 0 || err != nil) {
			ready <- env
			sent = true
		}
		if err != nil {
			break
		}
	}
	if !sent {
		ready <- nil
	}
}

// flagValue finds `name value` or `name=value` in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
