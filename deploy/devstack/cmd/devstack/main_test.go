package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
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
	cmd      *exec.Cmd
	env      map[string]string
	redisPID int
	done     chan error
}

// startDevstack runs devstack as a child process and waits for its exports.
func startDevstack(t *testing.T, exports int, args ...string) *started {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH; .ci/run installs it")
		}
		t.Skip("redis-server is not on PATH: this test checks that its child process is stopped")
	}
	cmd := exec.Command(os.Args[0], append([]string{"--data", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "DEVSTACK_AS_MAIN=1")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, env: map[string]string{}, done: make(chan error, 1)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.done })

	// Both pipes are read to EOF before Wait, as os/exec requires.
	pidc := make(chan int, 1)
	lines := make(chan string, 64)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { // redis-server's pid, from the log line on stderr
		defer readers.Done()
		re := regexp.MustCompile(`redis-server.* pid=(\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				select {
				case pidc <- n:
				default:
				}
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
	select {
	case s.redisPID = <-pidc:
	case <-time.After(10 * time.Second):
		t.Fatal("no redis-server pid in the log")
	}
	return s
}

func (s *started) addrs() []string {
	return []string{
		strings.TrimSuffix(strings.TrimPrefix(s.env["JOTGUARD_MONGO_URI"], "mongodb://"), "/"),
		strings.TrimSuffix(strings.TrimPrefix(s.env["JOTGUARD_REDIS_URL"], "redis://"), "/0"),
		s.env["JOTGUARD_KAFKA_BROKERS"],
	}
}

// waitGone polls until pid has exited and no addr accepts connections, or
// fails after a generous bound (a hang, not a slow machine).
func waitGone(t *testing.T, pid int, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		alive := syscall.Kill(pid, 0) == nil && !isZombie(pid)
		var open []string
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				open = append(open, a)
			}
		}
		if !alive && len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after devstack stopped: redis-server pid %d alive=%v, still listening: %v", pid, alive, open)
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

func TestExportsAndSIGTERMStopsEverything(t *testing.T) {
	s := startDevstack(t, 4, "--redis", "server")
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		if s.env[k] == "" {
			t.Errorf("%s not exported", k)
		}
	}
	for _, a := range s.addrs() {
		if c, err := net.Dial("tcp", a); err != nil {
			t.Errorf("%s does not accept connections: %v", a, err)
		} else {
			c.Close()
		}
	}
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
	waitGone(t, s.redisPID, s.addrs())
}

// TestSIGKILLLeavesNoOrphan: even a parent killed without a chance to clean
// up takes its redis-server with it (Pdeathsig).
func TestSIGKILLLeavesNoOrphan(t *testing.T) {
	s := startDevstack(t, 1, "--redis", "server", "--only", "redis")
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s.done <- nil
	waitGone(t, s.redisPID, []string{strings.TrimSuffix(strings.TrimPrefix(s.env["JOTGUARD_REDIS_URL"], "redis://"), "/0")})
}

func TestBadFlag(t *testing.T) {
	err := run(context.Background(), []string{"--no-such-flag"}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("want an error for an unknown flag")
	}
}
