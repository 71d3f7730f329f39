package app_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/jotguard/jotguard/verifier/internal/app"
	"github.com/jotguard/jotguard/verifier/internal/config"
	"github.com/jotguard/jotguard/verifier/internal/logging"
)

var client = &http.Client{Timeout: 10 * time.Second}

// ---- the verifier, in process ----

type verifier struct {
	URL      string
	AdminURL string // "" without JOTGUARD_ADMIN_ADDR
	log      *logBuffer
	stop     func() error // cancels Run and returns its error
}

// withAdmin sets JOTGUARD_ADMIN_ADDR to a free loopback port and returns env.
func withAdmin(t *testing.T, env map[string]string) map[string]string {
	env["JOTGUARD_ADMIN_ADDR"] = freeAddr(t)
	return env
}

// startVerifier runs app.Run on 127.0.0.1:0 with env (JOTGUARD_* values)
// over the defaults. It is stopped at the end of t unless stopped before.
// Its log (info and up) goes to t.Log and to v.log.
func startVerifier(t *testing.T, env map[string]string) *verifier {
	t.Helper()
	env["JOTGUARD_VERIFIER_ADDR"] = "127.0.0.1:0"
	if _, ok := env["JOTGUARD_SHUTDOWN_GRACE"]; !ok {
		env["JOTGUARD_SHUTDOWN_GRACE"] = "5s"
	}
	if _, ok := env["JOTGUARD_DRAIN_DELAY"]; !ok {
		env["JOTGUARD_DRAIN_DELAY"] = "0s"
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogLevel = slog.LevelInfo
	logs := &logBuffer{}
	log := logging.New(io.MultiWriter(tlogWriter{t}, logs), cfg.LogLevel, "text")
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, log, func(a string) { addr <- a }) }()
	v := &verifier{log: logs}
	if a := env["JOTGUARD_ADMIN_ADDR"]; a != "" {
		v.AdminURL = "http://" + a
	}
	select {
	case a := <-addr:
		v.URL = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("app.Run: %v", err)
	}
	var once sync.Once
	var runErr error
	v.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := v.stop(); err != nil {
			t.Errorf("app.Run: %v", err)
		}
	})
	return v
}

// tlogWriter sends the verifier's log to t.Log (dropped once t is done).
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a late line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logBuffer collects a verifier's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// check asks the forward-auth endpoint about token and returns the status.
func (v *verifier) check(t testing.TB, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.URL+"/authz/forward-auth", nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// get fetches path from the port that serves the operational endpoints:
// the admin listener when there is one, else the main one.
func (v *verifier) get(t testing.TB, path string) (int, string) {
	t.Helper()
	base := v.URL
	if v.AdminURL != "" {
		base = v.AdminURL
	}
	return getURL(t, base+path, "")
}

// getURL fetches url, with token as Bearer when set.
func getURL(t testing.TB, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// raw sends req (a whole HTTP/1.1 request, byte for byte) to addr and reads
// one response. A server that neither answers nor closes within 15 s fails
// the test (a hang detector, not a timing assertion).
func raw(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: reading the response: %v", req, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// metric returns the value of a sample line starting with name (e.g.
// `jotguard_verifier_revocation_degraded`), or "" when absent.
func (v *verifier) metric(t testing.TB, name string) string {
	t.Helper()
	_, body := v.get(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return rest
		}
	}
	return ""
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProxy runs a verifier in proxy mode in front of upstream for iss's
// tokens, with the settings env (may be nil) over those, and returns it
// once a token of alice, returned too, passes.
func startProxy(t *testing.T, iss *sdktest.Issuer, upstream string, env map[string]string) (*verifier, string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["JOTGUARD_ISSUER"], env["JOTGUARD_UPSTREAM"] = iss.URL, upstream
	v := startVerifier(t, env)
	tok := iss.Mint(t, iss.Claims("alice"))
	waitAllowed(t, v, tok, 10*time.Second)
	return v, tok
}

// waitAllowed polls the main port of a verifier in proxy mode with token
// until the request passes (any answer of the upstream, not 401 or 503):
// keys loaded and, with a feed, the revocation replay caught up.
func waitAllowed(t *testing.T, v *verifier, token string, d time.Duration) {
	t.Helper()
	eventually(t, d, "a request with a valid token reaches the upstream", func() bool {
		code, _ := getURL(t, v.URL+"/x", token)
		return code != http.StatusUnauthorized && code != http.StatusServiceUnavailable
	})
}

// ---- the dev stack ----

// stackEnv returns the dev stack settings, or skips (fails in CI).
func stackEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		env[k] = sdktest.RequireEnv(t, k)
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ---- the real issuer, as a subprocess ----

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// issuerBin is JOTGUARD_ISSUER_BIN, or bin/issuer built from ../issuer once
// per test run.
func issuerBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("JOTGUARD_ISSUER_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "jg-issuer-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "issuer")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/issuer")
		cmd.Dir = filepath.Join("..", "..", "..", "issuer")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build issuer: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type issuer struct {
	URL  string
	addr string
	env  []string
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
}

// accessTTL of the test issuers; the verifiers replay this plus the leeway.
const accessTTL = "2m"

// startIssuer runs the issuer on a free port with a fresh database and
// Redis prefix, and waits until it is ready.
func startIssuer(t *testing.T, stack map[string]string) *issuer {
	t.Helper()
	return startIssuerAt(t, stack, freeAddr(t))
}

// startIssuerAt is startIssuer on addr; extra settings (KEY=value) override
// the defaults.
func startIssuerAt(t *testing.T, stack map[string]string, addr string, extra ...string) *issuer {
	t.Helper()
	id := strings.ToLower(rand.Text()[:12])
	env := append(os.Environ(),
		"JOTGUARD_ISSUER=http://"+addr, "JOTGUARD_ISSUER_ADDR="+addr,
		"JOTGUARD_MONGO_URI="+stack["JOTGUARD_MONGO_URI"], "JOTGUARD_MONGO_DB=vt_"+id,
		"JOTGUARD_REDIS_URL="+stack["JOTGUARD_REDIS_URL"], "JOTGUARD_REDIS_PREFIX=vt"+id,
		"JOTGUARD_KAFKA_BROKERS="+stack["JOTGUARD_KAFKA_BROKERS"],
		"JOTGUARD_REVOCATION_TOPIC="+stack["JOTGUARD_REVOCATION_TOPIC"],
		"JOTGUARD_COOKIE_SECURE=false", "JOTGUARD_ACCESS_TTL="+accessTTL,
		"JOTGUARD_ARGON2_MEMORY=64", "JOTGUARD_ARGON2_TIME=1", "JOTGUARD_RATE_LIMITS=off",
		"JOTGUARD_LOG_LEVEL=warn", "JOTGUARD_LOG_FORMAT=text", "JOTGUARD_SHUTDOWN_GRACE=2s", "JOTGUARD_DRAIN_DELAY=0s")
	env = append(env, extra...) // the last of a duplicate key wins
	is := &issuer{URL: "http://" + addr, addr: addr, env: env, bin: issuerBin(t)}
	is.start(t)
	t.Cleanup(is.stop)
	return is
}

func (is *issuer) start(t *testing.T) {
	t.Helper()
	is.cmd = exec.Command(is.bin)
	is.cmd.Env = is.env
	is.cmd.Stdout = tlogWriter{t}
	is.cmd.Stderr = tlogWriter{t}
	if err := is.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	is.done = make(chan struct{})
	go func() { _ = is.cmd.Wait(); close(is.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := client.Get(is.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-is.done:
			t.Fatalf("issuer exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer not ready within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the issuer (SIGTERM, then SIGKILL) and waits for it.
func (is *issuer) stop() {
	if is.cmd == nil || is.cmd.Process == nil {
		return
	}
	_ = is.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-is.done:
	case <-time.After(10 * time.Second):
		_ = is.cmd.Process.Kill()
		<-is.done
	}
}

// verifierEnv is a verifier configuration for this issuer.
func (is *issuer) verifierEnv(stack map[string]string) map[string]string {
	return map[string]string{
		"JOTGUARD_ISSUER":           is.URL,
		"JOTGUARD_KAFKA_BROKERS":    stack["JOTGUARD_KAFKA_BROKERS"],
		"JOTGUARD_REVOCATION_TOPIC": stack["JOTGUARD_REVOCATION_TOPIC"],
		"JOTGUARD_ACCESS_TTL":       accessTTL,
	}
}

func (is *issuer) do(t testing.TB, method, path, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, is.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

const password = "correct horse battery staple"

// register creates a user and returns its email.
func (is *issuer) register(t testing.TB) string {
	t.Helper()
	email := "u" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	res, b := is.do(t, http.MethodPost, "/register", "", map[string]string{"email": email, "password": password})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", res.StatusCode, b)
	}
	return email
}

// login returns a fresh access token (a new session) of email.
func (is *issuer) login(t testing.TB, email string) string {
	t.Helper()
	res, b := is.do(t, http.MethodPost, "/login", "", map[string]string{"email": email, "password": password})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", res.StatusCode, b)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" {
		t.Fatalf("login body %s: %v", b, err)
	}
	return out.AccessToken
}

// logout ends the token's session (scope local, global or others).
func (is *issuer) logout(t testing.TB, token, scope string) {
	t.Helper()
	res, b := is.do(t, http.MethodPost, "/logout?scope="+scope, token, nil)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.StatusCode, b)
	}
}

// ---- a dedicated Kafka broker ----

type broker struct {
	*sdktest.Devstack
	Addr string
}

// startBroker runs `devstack --only kafka` with its own topic.
func startBroker(t *testing.T, topic string) *broker {
	t.Helper()
	d := sdktest.StartDevstack(t, "kafka", "--topic", topic, "--partitions", "6")
	return &broker{Devstack: d, Addr: d.Env("JOTGUARD_KAFKA_BROKERS")}
}

func (b *broker) stop() { b.Stop() }
