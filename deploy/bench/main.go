// Command bench is jotguard's benchmark harness: it starts the dev
// stack, bin/issuer and bin/verifier as subprocesses, drives them with its
// own closed-loop load generator, measures every ceiling in the same run,
// and writes docs/benchmarks.md and the charts under docs/img/.
//
//	bench [--quick] [--root DIR]     the benchmark (make bench, make bench-quick)
//	bench serve bare|jwt|session …   a helper server (started by the bench)
//	bench load --url … --c N --d D   one pinned HTTP load run (started by the bench)
//	bench argon2 --m … --n N         the argon2id ceiling, in a fresh process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if ok, err := subcommand(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseConfig(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	os.Exit(benchMain(cfg))
}

// subcommand runs `bench serve|load|argon2 …`, the processes the bench
// starts; ok is false when args name none of them.
func subcommand(args []string) (ok bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "serve":
		return true, serveMain(args[1:])
	case "load":
		return true, loadMain(args[1:])
	case "argon2":
		return true, argon2Main(args[1:])
	}
	return false, nil
}

// benchMain runs the benchmark and writes its report; it answers the exit
// status.
func benchMain(cfg Config) int {
	log := newLogger(os.Stderr)
	// Logs and profiles live outside the repository: `make clean` (rm -rf
	// .data) in another shell must not pull them from under a running bench.
	logDir := filepath.Join(os.TempDir(), fmt.Sprintf("jotguard-bench-%d", os.Getpid()))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	log.Printf("logs in %s", logDir)
	load, err := newHTTPLoader(cfg.LoadGen, cfg.LoadCPUs, logDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	log.Printf("HTTP load generator: %s", load)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, log, logDir, load)
	if rep != nil {
		if werr := writeReport(rep, cfg.Out, log); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: report:", werr)
			return 1
		}
		log.Printf("wrote %s", cfg.Out)
		fmt.Print(rep.Summary())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// logger prints the bench's progress, each line stamped with the time
// since the bench started.
type logger struct {
	start time.Time
	w     io.Writer
}

func newLogger(w io.Writer) *logger { return &logger{start: time.Now(), w: w} }

// Printf prints one line.
func (l *logger) Printf(format string, args ...any) {
	fmt.Fprintf(l.w, "[%6.1fs] "+format+"\n", append([]any{l.Elapsed().Seconds()}, args...)...)
}

// Elapsed is the time since the bench started.
func (l *logger) Elapsed() time.Duration { return time.Since(l.start) }
