package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a server the bench started as a subprocess.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Addr string // host:port it serves on, when it has one
	log  *os.File
}

// pinned prefixes argv with taskset when cpus is set and taskset exists.
func pinned(cpus string, argv ...string) []string {
	if cpus == "" {
		return argv
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

// Procs starts the bench's subprocesses, each logging to its own file in
// a directory, and stops them all at the end.
type Procs struct {
	dir  string
	list []*Proc
	data []string // data directories, removed by StopAll
}

// newProcs returns a Procs logging to dir.
func newProcs(dir string) *Procs { return &Procs{dir: dir} }

// Start runs argv pinned to cpus, with env added to the bench's
// environment, logging to dir/name.log.
func (ps *Procs) Start(name, cpus string, env []string, argv ...string) (*Proc, error) {
	argv = pinned(cpus, argv...)
	_ = os.MkdirAll(ps.dir, 0o755)
	f, err := os.Create(filepath.Join(ps.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, log: f}
	ps.list = append(ps.list, p)
	return p, nil
}

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (p *Proc) Stop() {
	if p == nil || p.Cmd.Process == nil || p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

// StopAll stops every process started, newest first, and removes the data
// directories.
func (ps *Procs) StopAll() {
	for i := len(ps.list) - 1; i >= 0; i-- {
		ps.list[i].Stop()
	}
	ps.list = nil
	for _, d := range ps.data {
		_ = os.RemoveAll(d)
	}
	ps.data = nil
}

// Named is the last process started under name, or nil.
func (ps *Procs) Named(name string) *Proc {
	for i := len(ps.list) - 1; i >= 0; i-- {
		if ps.list[i].Name == name {
			return ps.list[i]
		}
	}
	return nil
}

// StopNamed stops the running processes whose name starts with prefix.
func (ps *Procs) StopNamed(prefix string) {
	for _, p := range ps.list {
		if strings.HasPrefix(p.Name, prefix) {
			p.Stop()
		}
	}
}

// RSS is the resident set size of the process (VmRSS), in bytes. With
// taskset in front, the server is taskset's child after exec: same pid.
func (p *Proc) RSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers 200 or timeout.
func waitHTTP(ctx context.Context, p *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if p != nil && p.Cmd.ProcessState != nil {
			return fmt.Errorf("%s exited: see %s", p.Name, p.log.Name())
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	name := url
	if p != nil {
		name = p.Name + " (" + p.log.Name() + ")"
	}
	return fmt.Errorf("%s not ready after %s", name, timeout)
}

// Devstack is the running dev stack and its settings.
type Devstack struct {
	*Proc
	Env map[string]string
}

// StartDevstack runs the dev stack binary bin, pinned to cpus, and waits
// for its export lines.
func (ps *Procs) StartDevstack(ctx context.Context, bin, cpus string) (*Devstack, error) {
	return ps.StartDevstackNamed(ctx, "devstack", bin, cpus, []string{"JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REDIS_URL"})
}

// StartDevstackNamed runs the dev stack binary bin with args, pinned to
// cpus, logging to name.log, and waits until it has printed the settings
// named in want.
func (ps *Procs) StartDevstackNamed(ctx context.Context, name, bin, cpus string, want []string, args ...string) (*Devstack, error) {
	data, err := os.MkdirTemp("", "jotguard-bench-data-")
	if err != nil {
		return nil, err
	}
	ps.data = append(ps.data, data)
	argv := pinned(cpus, append([]string{bin, "--data", data}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	f, err := os.Create(filepath.Join(ps.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Name: name, Cmd: cmd, log: f}
	ps.list = append(ps.list, p)
	env := map[string]string{}
	got := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := strings.TrimPrefix(sc.Text(), "export ")
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = strings.Trim(v, `'"`)
			}
			if hasAll(env, want) {
				got <- nil
				_, _ = bufio.NewReader(out).WriteTo(f) // drain
				return
			}
		}
		got <- fmt.Errorf("devstack stopped before printing its settings: see %s", f.Name())
	}()
	select {
	case err := <-got:
		if err != nil {
			return nil, err
		}
	case <-time.After(90 * time.Second):
		return nil, fmt.Errorf("devstack not ready after 90s: see %s", f.Name())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if env["JOTGUARD_KAFKA_BROKERS"] != "" && env["JOTGUARD_REVOCATION_TOPIC"] == "" {
		env["JOTGUARD_REVOCATION_TOPIC"] = "jotguard.revocations"
	}
	return &Devstack{Proc: p, Env: env}, nil
}

// hasAll reports whether env has every key of keys.
func hasAll(env map[string]string, keys []string) bool {
	for _, k := range keys {
		if _, ok := env[k]; !ok {
			return false
		}
	}
	return true
}

func envList(m map[string]string, extra ...string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}
