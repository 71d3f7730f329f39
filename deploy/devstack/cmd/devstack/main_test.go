package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as devstack: with DEVSTACK_AS_MAIN=1 it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("DEVSTACK_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type started struct {
	cmd  *exec.Cmd
	env  map[string]string
	done chan error

	mu   sync.Mutex
	pids map[string]int // child processes by service, from the log
}

// needRedisServer skips (fails in CI) a test that runs redis-server.
func needRedisServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH; .ci/run installs it")
		}
		t.Skip("redis-server is not on PATH: this test checks that its child process is stopped")
	}
}

// startDevstack runs devstack as a child process and waits for its exports.
// It adds --data with a fresh directory; a later --data in args wins.
func startDevstack(t *testing.T, exports int, args ...string) *started {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--data", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "DEVSTACK_AS_MAIN=1")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, env: map[string]string{}, done: make(chan error, 1), pids: map[string]int{}}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.done })

	// Both pipes are read to EOF before Wait, as os/exec requires.
	lines := make(chan string, 64)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { // the pids of redis-server and Mailpit, from the log lines on stderr
		defer readers.Done()
		re := regexp.MustCompile(`msg="(redis|mail|openid provider): .* pid=(\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[2])
				s.mu.Lock()
				s.pids[m[1]] = n
				s.mu.Unlock()
			}
		}
	}()
	go func() {
		defer readers.Done()
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // devstack prints a handful of lines; drop any excess
			}
		}
	}()
	go func() { readers.Wait(); s.done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for len(s.env) < exports {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("devstack closed stdout after %d exports", len(s.env))
			}
			k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "=")
			if !ok || !strings.HasPrefix(l, "export JOTGUARD_") {
				t.Fatalf("stdout line %q is not an export line", l)
			}
			s.env[k] = v
		case <-deadline:
			t.Fatal("devstack printed no exports within 2 minutes")
		}
	}
	return s
}

// pid is the child process of service ("redis", "mail" or "openid provider") that devstack
// logged when it started it.
func (s *started) pid(t *testing.T, service string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		pid := s.pids[service]
		s.mu.Unlock()
		if pid != 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s pid in the log", service)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addr is the host:port of an exported URL or address.
func (s *started) addr(key string) string {
	v := s.env[key]
	if u, err := url.Parse(v); err == nil && u.Host != "" {
		return u.Host
	}
	return v
}

func (s *started) addrs() []string {
	var out []string
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_SMTP_URL", "JOTGUARD_MAILPIT_URL",
		"JOTGUARD_HYDRA_URL", "JOTGUARD_HYDRA_ADMIN_URL"} {
		if s.env[k] != "" {
			out = append(out, s.addr(k))
		}
	}
	return out
}

// stop sends SIGTERM and wants devstack to exit with status 0.
func (s *started) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("devstack exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not exit after SIGTERM")
	}
	s.done <- nil // for Cleanup
}

// waitGone polls until every pid has exited and no addr accepts
// connections, or fails after a generous bound (a hang, not a slow machine).
func waitGone(t *testing.T, pids []int, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alive []int
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				alive = append(alive, pid)
			}
		}
		var open []string
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				open = append(open, a)
			}
		}
		if len(alive) == 0 && len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after devstack stopped: child processes %v alive, still listening: %v", alive, open)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// hydraBin is the Hydra binary make build writes beside bin/devstack.
func hydraBin(t *testing.T) string {
	t.Helper()
	devstack := os.Getenv("JOTGUARD_DEVSTACK_BIN")
	if devstack == "" {
		const msg = "JOTGUARD_DEVSTACK_BIN is not set: `make test` sets it, beside bin/hydra"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return filepath.Join(filepath.Dir(devstack), "hydra")
}

func TestExportsAndSIGTERMStopsEverything(t *testing.T) {
	needRedisServer(t)
	s := startDevstack(t, 8, "--redis", "server", "--hydra-bin", hydraBin(t))
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC",
		"JOTGUARD_SMTP_URL", "JOTGUARD_MAILPIT_URL", "JOTGUARD_HYDRA_URL", "JOTGUARD_HYDRA_ADMIN_URL"} {
		if s.env[k] == "" {
			t.Errorf("%s not exported", k)
		}
	}
	for k, scheme := range map[string]string{"JOTGUARD_SMTP_URL": "smtp://127.0.0.1:", "JOTGUARD_MAILPIT_URL": "http://127.0.0.1:"} {
		if !strings.HasPrefix(s.env[k], scheme) {
			t.Errorf("%s=%s, want %s…", k, s.env[k], scheme)
		}
	}
	for _, a := range s.addrs() {
		if c, err := net.Dial("tcp", a); err != nil {
			t.Errorf("%s does not accept connections: %v", a, err)
		} else {
			c.Close()
		}
	}
	pids := []int{s.pid(t, "redis"), s.pid(t, "mail"), s.pid(t, "openid provider")}
	s.stop(t)
	waitGone(t, pids, s.addrs())
}

// TestSIGKILLLeavesNoOrphan: even a parent killed without a chance to clean
// up takes its redis-server and Mailpit with it (Pdeathsig).
func TestSIGKILLLeavesNoOrphan(t *testing.T) {
	needRedisServer(t)
	s := startDevstack(t, 3, "--redis", "server", "--only", "redis,mail")
	pids := []int{s.pid(t, "redis"), s.pid(t, "mail")}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s.done <- nil
	waitGone(t, pids, s.addrs())
}

// TestMailStopRestartKeepsMail: `--only mail` stops on SIGTERM with its
// Mailpit, and a restart on the ports it had and the same --data serves the
// same URLs and the mail received before.
func TestMailStopRestartKeepsMail(t *testing.T) {
	data := t.TempDir()
	s := startDevstack(t, 2, "--only", "mail", "--data", data)
	if len(s.env) != 2 {
		t.Errorf("--only mail exported %v, want JOTGUARD_SMTP_URL and JOTGUARD_MAILPIT_URL", s.env)
	}
	subject := "Before the restart " + strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := "From: no-reply@localhost\r\nTo: ada@example.com\r\nSubject: " + subject + "\r\n\r\nkept\r\n"
	if err := smtp.SendMail(s.addr("JOTGUARD_SMTP_URL"), nil, "no-reply@localhost", []string{"ada@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if n := countMail(t, s.env["JOTGUARD_MAILPIT_URL"], subject); n != 1 {
		t.Fatalf("%d messages with subject %q before the restart, want 1", n, subject)
	}
	pid := s.pid(t, "mail")
	s.stop(t)
	waitGone(t, []int{pid}, s.addrs())

	_, smtpPort, _ := net.SplitHostPort(s.addr("JOTGUARD_SMTP_URL"))
	_, mailPort, _ := net.SplitHostPort(s.addr("JOTGUARD_MAILPIT_URL"))
	r := startDevstack(t, 2, "--only", "mail", "--data", data, "--smtp-port", smtpPort, "--mail-port", mailPort)
	for _, k := range []string{"JOTGUARD_SMTP_URL", "JOTGUARD_MAILPIT_URL"} {
		if r.env[k] != s.env[k] {
			t.Errorf("after the restart %s=%s, want %s", k, r.env[k], s.env[k])
		}
	}
	if n := countMail(t, r.env["JOTGUARD_MAILPIT_URL"], subject); n != 1 {
		t.Errorf("%d messages with subject %q after the restart, want 1 (kept under --data)", n, subject)
	}
}

// TestMailpitEnvKeepsStdoutClean: Mailpit's MP_* variables in the
// environment neither print on stdout (Mailpit warns about a deprecated one
// as the program starts) nor turn STARTTLS on.
func TestMailpitEnvKeepsStdoutClean(t *testing.T) {
	t.Setenv("MP_DATA_FILE", filepath.Join(t.TempDir(), "deprecated.db"))
	t.Setenv("MP_SMTP_REQUIRE_STARTTLS", "true")
	s := startDevstack(t, 2, "--only", "mail") // fails on any other stdout line
	c, err := smtp.Dial(s.addr("JOTGUARD_SMTP_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("MP_SMTP_REQUIRE_STARTTLS reached Mailpit: it offers STARTTLS")
	}
	if err := c.Mail("no-reply@localhost"); err != nil {
		t.Errorf("MAIL FROM without STARTTLS: %v", err)
	}
}

// countMail asks Mailpit's search API how many messages have subject.
func countMail(t *testing.T, base, subject string) int {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/search?query=" + url.QueryEscape(`subject:"`+subject+`"`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Messages []struct{ Subject string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("search: %s, %v", resp.Status, err)
	}
	return len(l.Messages)
}

func TestHelpNamesTheMailFlags(t *testing.T) {
	var stderr strings.Builder
	if err := run(context.Background(), []string{"--help"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"-smtp-port", "-mail-port", "Mailpit", "JOTGUARD_MAILPIT_URL"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("--help does not mention %s:\n%s", w, stderr.String())
		}
	}
}

func TestBadFlag(t *testing.T) {
	err := run(context.Background(), []string{"--no-such-flag"}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("want an error for an unknown flag")
	}
}

func TestHelpNamesTheKafkaSecurityFlags(t *testing.T) {
	var stderr strings.Builder
	if err := run(context.Background(), []string{"--help"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"-kafka-sasl-mechanism", "-kafka-sasl-user", "-kafka-sasl-password",
		"-kafka-tls-cert", "-kafka-tls-key", "-kafka-tls-client-ca"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("--help does not mention %s:\n%s", w, stderr.String())
		}
	}
}
