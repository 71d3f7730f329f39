// Package run is `make run`: it starts the dev stack, the issuer, the demo
// upstream and a verifier in reverse-proxy mode in front of it, waits until
// each is ready, prints the URLs and a curl walk-through, and stops them all
// in reverse order when its context ends. Children die with the runner even
// when it is killed (Pdeathsig on Linux).
package run

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configures a System.
type Options struct {
	BinDir  string // where issuer, verifier, demo and devstack are
	DataDir string // dev stack data (DataDir/devstack), logs, the key encryption key

	IssuerAddr   string // default 127.0.0.1:8080
	VerifierAddr string // default 127.0.0.1:8081
	AdminAddr    string // the verifier's /healthz, /readyz, /metrics; default 127.0.0.1:9081
	DemoAddr     string // default 127.0.0.1:8090
	InboxAddr    string // the dev stack's mail inbox (Mailpit's HTTP port); default 127.0.0.1:8025

	// Backends, when set, are the JOTGUARD_* settings (KEY=VALUE) of
	// servers that already run: no dev stack is started. Tests use it.
	Backends []string
	// Extra are KEY=VALUE settings added to the issuer's, verifier's and
	// demo's environment.
	Extra []string

	Progress io.Writer       // one line per step; nil: discard
	Env      func() []string // the environment the children inherit (JOTGUARD_* removed); nil: os.Environ
	Timeout  time.Duration   // per component readiness; default 2m
}

// System is a started jotguard: its URLs and its processes.
type System struct {
	IssuerURL, VerifierURL, DemoURL string
	AdminURL                        string // the verifier's operational endpoints
	InboxURL                        string // the dev stack's mail inbox (JOTGUARD_MAILPIT_URL); "" when mail is disabled
	LogDir                          string
	KeyIDs                          []string // kids of the issuer's JWKS once ready
	// IssuerEnv is a file of the issuer's JOTGUARD_* settings, one
	// VAR=value a line, for the issuer's commands (issuer users, issuer
	// clients) to work on the same stores.
	IssuerEnv string

	procs []*proc
	dead  chan string // name of a child that exited on its own
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited <-chan error
	log    string
	done   chan struct{}
	err    error
}

// ErrPortBusy is returned when one of the fixed ports is already in use.
var ErrPortBusy = errors.New("port in use")

// Start starts every component and returns once all are ready. On error,
// what was started is stopped again.
func Start(ctx context.Context, o Options) (_ *System, err error) {
	if o.IssuerAddr == "" {
		o.IssuerAddr = "127.0.0.1:8080"
	}
	if o.VerifierAddr == "" {
		o.VerifierAddr = "127.0.0.1:8081"
	}
	if o.DemoAddr == "" {
		o.DemoAddr = "127.0.0.1:8090"
	}
	if o.AdminAddr == "" {
		o.AdminAddr = "127.0.0.1:9081"
	}
	if o.InboxAddr == "" {
		o.InboxAddr = "127.0.0.1:8025"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Env == nil {
		o.Env = os.Environ
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	fixed := []struct{ name, addr, flag string }{
		{"issuer", o.IssuerAddr, "--issuer-addr"},
		{"verifier", o.VerifierAddr, "--verifier-addr"},
		{"verifier", o.AdminAddr, "--verifier-admin-addr"},
		{"demo", o.DemoAddr, "--demo-addr"},
	}
	if o.Backends == nil {
		fixed = append(fixed, struct{ name, addr, flag string }{"mail inbox", o.InboxAddr, "--inbox-addr"})
	}
	for _, p := range fixed {
		if err := portFree(p.addr); err != nil {
			return nil, fmt.Errorf("%w: %s (the %s's) is busy: stop what listens there (ss -ltnp 'sport = :%s'), "+
				"or choose another address: make run ARGS='%s 127.0.0.1:PORT' (%v)",
				ErrPortBusy, p.addr, p.name, port(p.addr), p.flag, err)
		}
	}
	for _, b := range []string{"devstack", "issuer", "verifier", "demo"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil && (b != "devstack" || o.Backends == nil) {
			return nil, fmt.Errorf("%s: %w (run `make build`)", filepath.Join(o.BinDir, b), err)
		}
	}
	s := &System{
		IssuerURL: "http://" + o.IssuerAddr, VerifierURL: "http://" + o.VerifierAddr, DemoURL: "http://" + o.DemoAddr,
		AdminURL: "http://" + o.AdminAddr,
		LogDir:   filepath.Join(o.DataDir, "logs"), dead: make(chan string, 8),
	}
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	base := slices.DeleteFunc(o.Env(), func(kv string) bool { return strings.HasPrefix(kv, "JOTGUARD_") })

	backends := o.Backends
	if backends == nil {
		fmt.Fprintf(o.Progress, "starting the dev stack (MongoDB protocol, Redis, Kafka protocol, a mail catcher; data in %s)\n", filepath.Join(o.DataDir, "devstack"))
		if backends, err = s.startDevstack(ctx, o, base); err != nil {
			return nil, err
		}
	}
	// Mail is the issuer's alone: the SMTP server gets its mail, and the
	// inbox is for the person reading it.
	var mail []string
	backends = slices.DeleteFunc(slices.Clone(backends), func(kv string) bool {
		switch k, v, _ := strings.Cut(kv, "="); k {
		case "JOTGUARD_SMTP_URL":
			mail = append(mail, kv)
			return true
		case "JOTGUARD_MAILPIT_URL":
			s.InboxURL = v
			return true
		}
		return false
	})
	kek, err := keyEncryptionKey(filepath.Join(o.DataDir, "issuer-key-encryption-key"))
	if err != nil {
		return nil, err
	}
	common := slices.Concat(base, backends, []string{
		"JOTGUARD_ISSUER=" + s.IssuerURL,
		"JOTGUARD_LOG_FORMAT=text",
		"JOTGUARD_DRAIN_DELAY=0s", // no load balancer to wait for: Ctrl-C stops at once
	}, o.Extra)

	issuerEnv := slices.Concat(common, mail, []string{
		"JOTGUARD_ISSUER_ADDR=" + o.IssuerAddr,
		"JOTGUARD_COOKIE_SECURE=false", // plain http on loopback: curl must send the cookie back
		"JOTGUARD_KEY_ENCRYPTION_KEY=" + kek,
	})
	s.IssuerEnv = filepath.Join(o.DataDir, "issuer.env")
	if err := writeEnvFile(s.IssuerEnv, issuerEnv); err != nil {
		return nil, err
	}
	fmt.Fprintln(o.Progress, "starting the issuer on", s.IssuerURL)
	if err := s.startReady(ctx, o, "issuer", s.IssuerURL, issuerEnv); err != nil {
		return nil, err
	}
	s.KeyIDs = jwksKIDs(ctx, s.IssuerURL+"/.well-known/jwks.json")

	fmt.Fprintln(o.Progress, "starting the demo upstream on", s.DemoURL)
	if err := s.startReady(ctx, o, "demo", s.DemoURL, append(slices.Clone(common),
		"JOTGUARD_DEMO_ADDR="+o.DemoAddr,
	)); err != nil {
		return nil, err
	}

	fmt.Fprintln(o.Progress, "starting the verifier on", s.VerifierURL, "(reverse proxy in front of the demo)")
	// Its /readyz is on the admin listener: every path of the main port is the demo's.
	if err := s.startReady(ctx, o, "verifier", s.AdminURL, append(slices.Clone(common),
		"JOTGUARD_VERIFIER_ADDR="+o.VerifierAddr,
		"JOTGUARD_ADMIN_ADDR="+o.AdminAddr,
		"JOTGUARD_UPSTREAM="+s.DemoURL,
		"JOTGUARD_PUBLIC_PATHS=/public",
	)); err != nil {
		return nil, err
	}
	return s, nil
}

// startDevstack starts bin/devstack and returns its export lines as
// KEY=VALUE once it printed them.
func (s *System) startDevstack(ctx context.Context, o Options, env []string) ([]string, error) {
	data := filepath.Join(o.DataDir, "devstack")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "devstack"), "--data", data, "--mail-port", port(o.InboxAddr))
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := s.spawn("devstack", cmd)
	if err != nil {
		return nil, err
	}
	lines := make(chan []string, 1)
	go func() {
		kv := readExports(out)
		if kv != nil {
			lines <- kv
		}
		_, _ = io.Copy(io.Discard, out) // nothing else is printed; never block the child
	}()
	timeout := time.NewTimer(o.Timeout)
	defer timeout.Stop()
	select {
	case kv := <-lines:
		return kv, nil
	case <-p.done:
		return nil, fmt.Errorf("the dev stack exited before it was ready: %v\n%s", p.err, tail(p.log))
	case <-timeout.C:
		return nil, fmt.Errorf("the dev stack was not ready within %s\n%s", o.Timeout, tail(p.log))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startReady starts bin/name with env and waits until its /readyz says 200.
func (s *System) startReady(ctx context.Context, o Options, name, url string, env []string) error {
	cmd := exec.Command(filepath.Join(o.BinDir, name))
	cmd.Env = env
	p, err := s.spawn(name, cmd)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(o.Timeout)
	client := &http.Client{Timeout: 3 * time.Second}
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the %s exited before it was ready: %v\n%s", name, p.err, tail(p.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s was not ready at %s/readyz within %s\n%s", name, url, o.Timeout, tail(p.log))
		}
	}
}

// spawn starts cmd with its stderr (and stdout unless taken) in
// LogDir/name.log.
func (s *System) spawn(name string, cmd *exec.Cmd) (*proc, error) {
	logPath := filepath.Join(s.LogDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	exited, err := start(cmd)
	f.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &proc{name: name, cmd: cmd, exited: exited, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = <-exited
		close(p.done)
		select {
		case s.dead <- name:
		default:
		}
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

// Dead receives the name of a component that exited while it should run.
func (s *System) Dead() <-chan string { return s.dead }

// Stop stops the components in reverse order of start: SIGTERM, then
// SIGKILL after 15 s. It returns once every one has exited.
func (s *System) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Log returns the path of a component's log file.
func (s *System) Log(name string) string { return filepath.Join(s.LogDir, name+".log") }

// readExports reads the dev stack's `export JOTGUARD_…=…` lines as
// KEY=VALUE, all of them: the dev stack prints them in one write, so once
// MongoDB's, Redis's and Kafka's are in and nothing more is buffered, the
// write was read whole (the mail catcher's lines come last). nil if r ends
// first.
func readExports(r io.Reader) []string {
	br := bufio.NewReader(r)
	var kv []string
	for {
		line, err := br.ReadString('\n')
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok && strings.HasPrefix(rest, "JOTGUARD_") {
			kv = append(kv, rest)
		}
		if has(kv, "JOTGUARD_MONGO_URI") && has(kv, "JOTGUARD_REDIS_URL") && has(kv, "JOTGUARD_KAFKA_BROKERS") &&
			(br.Buffered() == 0 || err != nil) {
			return kv
		}
		if err != nil {
			return nil
		}
	}
}

func has(kv []string, key string) bool {
	return slices.ContainsFunc(kv, func(s string) bool { return strings.HasPrefix(s, key+"=") })
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// writeEnvFile writes the JOTGUARD_* entries of env to path, readable by
// its owner only (it holds the key encryption key).
func writeEnvFile(path string, env []string) error {
	var b strings.Builder
	for _, kv := range env {
		if strings.HasPrefix(kv, "JOTGUARD_") {
			b.WriteString(kv + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // a file of an earlier run keeps its mode otherwise
}

// keyEncryptionKey reads the issuer's JOTGUARD_KEY_ENCRYPTION_KEY from path,
// creating it (32 random bytes, hex, mode 0600) on the first run: the
// signing keys in MongoDB stay encrypted, and a second run can read them.
func keyEncryptionKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	s := hex.EncodeToString(k)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// jwksKIDs returns the kids of a JWKS, or nil.
func jwksKIDs(ctx context.Context, url string) []string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if json.NewDecoder(resp.Body).Decode(&set) != nil {
		return nil
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// tail returns the last lines of a log file, indented, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "last lines of " + path + ":\n    " + strings.Join(lines, "\n    ")
}
