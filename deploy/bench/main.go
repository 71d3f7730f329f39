// Command bench is jotguard's benchmark harness (issue 7): it starts the dev
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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Config is the run's configuration.
type Config struct {
	Quick      bool
	Root       string // repository root: bin/ and docs/ are here
	ServerCPUs string // taskset list for the servers under test
	LoadCPUs   string // taskset list for the load generator
	LoadGen    string // HTTP load generator of scenarios 4 and 8: auto, wrk or go
	MongoURI   string // a MongoDB for the issuer instead of the dev stack's FerretDB
	Runs       int
	Skip       map[string]bool
	Profile    bool // CPU profiles of the issuer and verifier under load
	FullMemory bool // inject 1M entries even when the run is long already
	Command    string
}

var (
	cfg    Config
	binDir string
	logDir string
	start0 = time.Now()
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(start0).Seconds()}, args...)...)
}

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "serve":
			err = serveMain(os.Args[2:])
		case "load":
			err = loadMain(os.Args[2:])
		case "argon2":
			err = argon2Main(os.Args[2:])
		default:
			goto bench
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
bench:
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.BoolVar(&cfg.Quick, "quick", false, "small counts, one run each (≤ 60 s)")
	fs.StringVar(&cfg.Root, "root", "../..", "repository root (bin/, docs/)")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", "0", "taskset CPU list of the servers under HTTP load (empty: no pinning)")
	fs.StringVar(&cfg.LoadCPUs, "load-cpus", "1", "taskset CPU list of the load generator (empty: no pinning)")
	fs.StringVar(&cfg.LoadGen, "loadgen", "auto", "HTTP load generator of the verifier scenarios: wrk, go (the bench's own), or auto (wrk when installed)")
	fs.StringVar(&cfg.MongoURI, "mongo-uri", "", "a MongoDB for the issuer instead of the dev stack's FerretDB (each run uses a fresh database)")
	fs.IntVar(&cfg.Runs, "runs", 0, "runs of each figure (default 3, quick 1)")
	fs.BoolVar(&cfg.Profile, "profile", false, "rebuild issuer and verifier with pprof (go build -overlay) and profile them under load")
	fs.BoolVar(&cfg.FullMemory, "full-memory", false, "always run the 1M-entry memory step (skipped when the run is past 6 minutes)")
	skip := fs.String("skip", "", "scenarios to skip (comma list of 1…8)")
	out := fs.String("out", "", "report path (default ROOT/docs/benchmarks.md)")
	_ = fs.Parse(os.Args[1:])
	if cfg.Runs == 0 {
		cfg.Runs = 3
		if cfg.Quick {
			cfg.Runs = 1
		}
	}
	for _, c := range []*string{&cfg.ServerCPUs, &cfg.LoadCPUs} {
		if *c != "" && exec.Command("taskset", "-c", *c, "true").Run() != nil {
			fmt.Fprintf(os.Stderr, "bench: cannot pin to CPUs %q (taskset missing or no such CPU): running unpinned\n", *c)
			cfg.ServerCPUs, cfg.LoadCPUs = "", ""
		}
	}
	cfg.Skip = map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		cfg.Skip[strings.TrimSpace(s)] = true
	}
	cfg.Command = "bench " + strings.Join(os.Args[1:], " ")
	if cfg.Quick {
		cfg.Command = "make bench-quick  # " + cfg.Command
	} else {
		cfg.Command = "make bench  # " + cfg.Command
	}
	root, _ := filepath.Abs(cfg.Root)
	cfg.Root = root
	binDir = filepath.Join(root, "bin")
	if *out == "" {
		*out = filepath.Join(root, "docs", "benchmarks.md")
	}
	// Logs and profiles live outside the repository: `make clean` (rm -rf
	// .data) in another shell must not pull them from under a running bench.
	logDir = filepath.Join(os.TempDir(), fmt.Sprintf("jotguard-bench-%d", os.Getpid()))
	_ = os.MkdirAll(logDir, 0o755)
	logf("logs in %s", logDir)
	if err := useWrk(cfg.LoadGen); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	logf("HTTP load generator: %s", map[bool]string{true: "wrk (" + wrkPath + ")", false: "the bench's Go loader"}[wrkPath != ""])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx)
	stopAll()
	if rep != nil {
		if werr := writeReport(rep, *out); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: report:", werr)
			os.Exit(1)
		}
		logf("wrote %s", *out)
		fmt.Print(rep.Summary())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
