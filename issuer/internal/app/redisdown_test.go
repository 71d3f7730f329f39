package app_test

import (
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// redisServer runs a redis-server of the test's own on a fixed port, so it
// can be stopped and brought back on the same address.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) start() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatalf("redis-server is not on PATH: %v", err)
	}
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %d did not start", r.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// With Redis gone, session requests answer 503 with Retry-After (never 500,
// never a success), and they work again once Redis is back, without a restart.
func TestRedisDownThenBack(t *testing.T) {
	sdktest.RequireEnv(t, "JOTGUARD_REDIS_URL") // the dev stack runs; this test brings its own Redis
	rs := &redisServer{t: t, port: freePort(t)}
	rs.start()
	t.Cleanup(rs.stop)
	s := startIssuer(t, map[string]string{"JOTGUARD_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port)})
	email := s.register(pw)
	at, rt := s.login(email, pw)

	rs.stop()
	for name, r := range map[string]resp{
		"login":   s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`),
		"refresh": s.refresh(rt),
		"me":      s.do("GET", "/me", "", "Authorization", "Bearer "+at),
		"logout":  s.do("POST", "/logout", "", "Cookie", "refresh_token="+rt),
		"readyz":  s.do("GET", "/readyz", ""),
	} {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s with Redis down: %d %s (Retry-After %q), want 503 with Retry-After", name, r.StatusCode, r.body, r.Header.Get("Retry-After"))
		}
	}
	// The readiness answer names the dependency, not its address or the
	// driver's words (those go to the log).
	if r := s.do("GET", "/readyz", ""); !strings.Contains(string(r.body), `"failing":["redis"]`) ||
		strings.Contains(string(r.body), strconv.Itoa(rs.port)) || strings.Contains(string(r.body), "dial") {
		t.Errorf("readyz body with Redis down: %s, want it to name redis and nothing more", r.body)
	}
	// Registration needs only MongoDB: its rate limit lets it through
	// unchecked. So does the one of revocations: revoking an access token
	// needs only Kafka.
	s.register(pw)
	if r := s.form("/oauth/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}}); r.StatusCode != 200 {
		t.Errorf("revoking an access token with Redis down: %d %s, want 200", r.StatusCode, r.body)
	}

	rs.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`)
		if r.StatusCode == 200 {
			break
		}
		if r.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("login after Redis came back: %d %s", r.StatusCode, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := s.do("GET", "/readyz", ""); r.StatusCode != 200 {
		t.Fatalf("readyz after Redis came back: %d %s", r.StatusCode, r.body)
	}
}
