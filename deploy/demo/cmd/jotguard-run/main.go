// Command jotguard-run is `make run`: the dev stack, the issuer, the demo
// upstream and a verifier in reverse-proxy mode in front of it, with a curl
// walk-through. Ctrl-C stops everything.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jotguard/jotguard/deploy/demo/internal/run"

	"slices"

	"github.com/jotguard/jotguard/sdk/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// A closed stdout (`make run | tee` and Ctrl-C) must not kill the runner
	// before it has stopped its children in order: writes just fail.
	signal.Ignore(syscall.SIGPIPE)

	if slices.Contains(os.Args[1:], "--version") || slices.Contains(os.Args[1:], "-version") {
		fmt.Println("jotguard-run", buildinfo.Read(""))
		return
	}
	fs := flag.NewFlagSet("jotguard-run", flag.ContinueOnError)
	var o run.Options
	fs.StringVar(&o.BinDir, "bin", "bin", "directory of the issuer, verifier, demo and devstack binaries")
	fs.StringVar(&o.DataDir, "data", ".data", "state kept between runs: dev stack data, logs, the issuer's key encryption key")
	fs.StringVar(&o.IssuerAddr, "issuer-addr", "127.0.0.1:8080", "issuer listen address")
	fs.StringVar(&o.VerifierAddr, "verifier-addr", "127.0.0.1:8081", "verifier listen address")
	fs.StringVar(&o.AdminAddr, "verifier-admin-addr", "127.0.0.1:9081", "verifier admin listen address (/healthz, /readyz, /metrics)")
	fs.StringVar(&o.DemoAddr, "demo-addr", "127.0.0.1:8090", "demo upstream listen address")
	fs.StringVar(&o.InboxAddr, "inbox-addr", "127.0.0.1:8025", "the dev stack's mail inbox (the mail the issuer sends, and Mailpit's API); 127.0.0.1 only")
	color := fs.String("color", "auto", "auto (when stdout is a terminal), always or never")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	st := run.Style{Color: *color == "always" || (*color == "auto" && isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "")}
	o.Progress = progress{st}

	sys, err := run.Start(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Println("interrupted; everything started was stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "jotguard-run:", err)
		os.Exit(1)
	}
	email := "ada-" + strings.ToLower(rand.Text()[:6]) + "@example.com"
	jar := filepath.Join(os.TempDir(), "jotguard-cookies.txt")
	fmt.Println()
	run.PrintReady(os.Stdout, st, sys, run.Walkthrough(sys.IssuerURL, sys.VerifierURL, sys.InboxURL, email, "correct horse battery staple", jar))

	code := 0
	select {
	case <-ctx.Done():
		fmt.Println()
		fmt.Println("stopping: verifier, demo, issuer, dev stack …")
	case name := <-sys.Dead():
		fmt.Fprintf(os.Stderr, "jotguard-run: the %s exited (see %s); stopping the rest\n", name, sys.Log(name))
		code = 1
	}
	sys.Stop()
	fmt.Println("stopped; data kept in", o.DataDir, "(make clean removes it)")
	os.Exit(code)
}

type progress struct{ st run.Style }

func (p progress) Write(b []byte) (int, error) {
	fmt.Println(p.st.Dim("· " + strings.TrimRight(string(b), "\n")))
	return len(b), nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
