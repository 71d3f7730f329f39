package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

var (
	issuerBin   = ""
	verifierBin = ""
	profDir     = ""
)

// buildProfiled builds bin/issuer and bin/verifier with pprof into dir.
func buildProfiled(dir string) error {
	src := filepath.Join(dir, "zz_pprof.go")
	if err := os.WriteFile(src, []byte(pprofFile), 0o644); err != nil {
		return err
	}
	for _, b := range []struct{ mod, pkg, out string }{
		{"issuer", "cmd/issuer", "issuer"}, {"verifier", "cmd/verifier", "verifier"}} {
		ov := filepath.Join(dir, "overlay-"+b.out+".json")
		target := filepath.Join(cfg.Root, b.mod, b.pkg, "zz_pprof.go")
		if err := os.WriteFile(ov, fmt.Appendf(nil, `{"Replace":{%q:%q}}`, target, src), 0o644); err != nil {
			return err
		}
		cmd := exec.Command("go", "build", "-overlay", ov, "-o", filepath.Join(dir, b.out), "./"+b.pkg)
		cmd.Dir = filepath.Join(cfg.Root, b.mod)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s with pprof: %v: %s", b.out, err, out)
		}
	}
	issuerBin, verifierBin = filepath.Join(dir, "issuer"), filepath.Join(dir, "verifier")
	return nil
}

// Profile is one CPU profile and its top functions.
type Profile struct {
	Name, Load, File, Top string
}

// cpuProfile takes a CPU profile of secs seconds from the pprof server at
// addr while load runs, and summarises it with go tool pprof -top.
func cpuProfile(ctx context.Context, name, addr string, secs int, load func()) (Profile, error) {
	p := Profile{Name: name, File: filepath.Join(profDir, name+".pprof")}
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
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", p.File).Output()
	if err != nil {
		return p, fmt.Errorf("pprof -top: %w", err)
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines { // drop the header up to "Showing nodes…"
		if strings.HasPrefix(strings.TrimSpace(l), "flat") {
			lines = lines[i:]
			break
		}
	}
	p.Top = strings.Join(lines, "\n")
	cum, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", p.File).Output()
	if cl := strings.Split(string(cum), "\n"); len(cl) > 0 {
		for i, l := range cl {
			if strings.HasPrefix(strings.TrimSpace(l), "flat") {
				cl = cl[i:]
				break
			}
		}
		p.Top += "\n\n-cum:\n" + strings.Join(cl, "\n")
	}
	return p, nil
}
