package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Profiling (--profile): bin/issuer and bin/verifier are rebuilt with one
// extra file, added through `go build -overlay` (their sources are not
// touched), that serves net/http/pprof on $BENCH_PPROF_ADDR. CPU profiles
// are then taken under the loads of the goals that miss.

const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if a := os.Getenv("BENCH_PPROF_ADDR"); a != "" {
		go http.ListenAndServe(a, nil)
	}
}
`

// buildProfiled builds the issuer and the verifier with pprof into
// logDir/profiles, where their profiles go too, and has the servers started
// from now on run them.
func (b *bench) buildProfiled() error {
	dir := b.profileDir()
	_ = os.MkdirAll(dir, 0o755)
	b.log.Printf("building issuer and verifier with pprof into %s", dir)
	if err := buildProfiled(b.cfg.Root, dir); err != nil {
		return err
	}
	b.servers.profiled(dir, "issuer", "verifier-1", "verifier-proxy")
	return nil
}

func (b *bench) profileDir() string { return filepath.Join(b.logDir, "profiles") }

// buildProfiled builds the issuer and the verifier of the repository at
// root with pprof, into dir/issuer and dir/verifier.
func buildProfiled(root, dir string) error {
	src := filepath.Join(dir, "zz_pprof.go")
	if err := os.WriteFile(src, []byte(pprofFile), 0o644); err != nil {
		return err
	}
	for _, b := range []struct{ mod, pkg, out string }{
		{"issuer", "cmd/issuer", "issuer"}, {"verifier", "cmd/verifier", "verifier"}} {
		ov := filepath.Join(dir, "overlay-"+b.out+".json")
		target := filepath.Join(root, b.mod, b.pkg, "zz_pprof.go")
		if err := os.WriteFile(ov, fmt.Appendf(nil, `{"Replace":{%q:%q}}`, target, src), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("go", "build", "-overlay", ov, "-o", filepath.Join(dir, b.out), "./"+b.pkg)
		cmd.Dir = filepath.Join(root, b.mod)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s with pprof: %v: %s", b.out, err, out)
		}
	}
	return nil
}

// Profile is one CPU profile and its top functions.
type Profile struct {
	Name, Load, File, Top string
}

// cpuProfile takes a CPU profile of secs seconds from the pprof server at
// addr into dir while load runs, and summarises it with go tool pprof -top.
func cpuProfile(ctx context.Context, dir, name, addr string, secs int, load func()) (Profile, error) {
	p := Profile{Name: name, File: filepath.Join(dir, name+".pprof")}
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err != nil {
			errc <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(p.File)
		if err != nil {
			errc <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		f.Close()
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	load()
	if err := <-errc; err != nil {
		return p, err
	}
	top, err := pprofTop(ctx, p.File, "-nodecount=25")
	if err != nil {
		return p, err
	}
	cum, _ := pprofTop(ctx, p.File, "-cum", "-nodecount=30")
	p.Top = top + "\n\n-cum:\n" + cum
	return p, nil
}

// pprofTop is `go tool pprof -top args… file` from its table's header on.
func pprofTop(ctx context.Context, file string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", slices.Concat([]string{"tool", "pprof", "-top"}, args, []string{file})...).Output()
	if err != nil {
		return "", fmt.Errorf("pprof -top: %w", err)
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines { // drop the header up to "Showing nodes…"
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			return strings.Join(lines[i:], "\n"), nil
		}
	}
	return string(out), nil
}

// profiles takes CPU profiles of the issuer under /access_token and /login
// load, and of the verifier under forward-auth and proxy load (c=64).
func (b *bench) profiles(ctx context.Context, ic *IssuerClient, targets []Target) {
	secs := max(2, int(b.plan.d.Seconds()))
	d := time.Duration(secs)*time.Second + time.Second
	b.profileIssuer(ctx, ic, secs, d)
	for _, t := range targets {
		name := map[string]string{tForward: "verifier-1", tProxy: "verifier-proxy"}[t.Name]
		if name == "" {
			continue
		}
		b.profile(ctx, name, name, t.Name+" at c=64", secs, func() {
			r, err := b.load.Run(t.Name+" (profiled)", t.URL, 64, d, t.Hdrs...)
			if err == nil {
				b.log.Printf("  profiled %s: %.0f req/s", t.Name, r.RPS())
			}
		})
	}
}

// profileIssuer profiles the issuer under /access_token load (64 sessions,
// each following its rotated cookie), then under /login load, for d each.
func (b *bench) profileIssuer(ctx context.Context, ic *IssuerClient, secs int, d time.Duration) {
	sess := make([]Session, 64)
	e := ic.Email(998, 0)
	_ = ic.Register(ctx, e)
	for w := range sess {
		s, err := ic.Login(ctx, e)
		if err != nil {
			b.note("profile: login: %v", err)
			return
		}
		sess[w] = s
	}
	b.profile(ctx, "issuer", "issuer-access-token", "/access_token at c=64", secs, func() {
		r := Load(ctx, "access_token (profiled)", 64, 0, d, 0, func(ctx context.Context, w, i int) error {
			s, err := ic.Refresh(ctx, sess[w].Refresh)
			if err == nil {
				sess[w] = s
			}
			return err
		})
		b.log.Printf("  profiled /access_token: %.0f req/s, errors %d", r.RPS(), r.Errors)
	})
	b.profile(ctx, "issuer", "issuer-login", "/login at c=64", secs, func() {
		r := Load(ctx, "login (profiled)", 64, 0, d, 0, func(ctx context.Context, w, i int) error {
			_, err := ic.Login(ctx, e)
			return err
		})
		b.log.Printf("  profiled /login: %.0f req/s, errors %d", r.RPS(), r.Errors)
	})
}

// profile takes profile name of the server named server while load runs,
// and keeps it for the report as taken under what.
func (b *bench) profile(ctx context.Context, server, name, what string, secs int, load func()) {
	p, err := cpuProfile(ctx, b.profileDir(), name, b.servers.pprof[server], secs, load)
	if err != nil {
		b.note("profile %s: %v", server, err)
		return
	}
	p.Load = what
	b.rep.Profiles = append(b.rep.Profiles, p)
}
