package main

import (
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// Config is the run's configuration, read from the command line by
// parseConfig.
type Config struct {
	Quick      bool
	Root       string // repository root: bin/ and docs/ are here
	Out        string // report path
	ServerCPUs string // taskset list for the servers under test
	LoadCPUs   string // taskset list for the load generator
	LoadGen    string // HTTP load generator of scenarios 4 and 8: auto, wrk or go
	MongoURI   string // a MongoDB for the issuer instead of the dev stack's FerretDB
	Runs       int
	Skip       map[string]bool
	Profile    bool   // CPU profiles of the issuer and verifier under load
	FullMemory bool   // inject 1M entries even when the run is long already
	Cache      string // kept between runs: the peers' binaries, the distinct tokens
	Command    string
}

// parseConfig reads the bench's flags (args without the program name). A
// CPU list taskset cannot pin to turns pinning off, with a line on stderr.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.Quick, "quick", false, "small counts, one run each (≤ 60 s)")
	fs.StringVar(&cfg.Root, "root", "../..", "repository root (bin/, docs/)")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", "0", "taskset CPU list of the servers under HTTP load (empty: no pinning)")
	fs.StringVar(&cfg.LoadCPUs, "load-cpus", "1", "taskset CPU list of the load generator (empty: no pinning)")
	fs.StringVar(&cfg.LoadGen, "loadgen", "auto", "HTTP load generator of the verifier scenarios: wrk, go (the bench's own), or auto (wrk when installed)")
	fs.StringVar(&cfg.MongoURI, "mongo-uri", "", "a MongoDB for the issuer instead of the dev stack's FerretDB (each run uses a fresh database)")
	fs.IntVar(&cfg.Runs, "runs", 0, "runs of each figure (default 3, quick 1)")
	fs.BoolVar(&cfg.Profile, "profile", false, "rebuild issuer and verifier with pprof (go build -overlay) and profile them under load")
	fs.BoolVar(&cfg.FullMemory, "full-memory", false, "always run the 1M-entry memory step (skipped when the run is past 6 minutes)")
	fs.StringVar(&cfg.Cache, "cache", "", "directory kept between runs: the peers' binaries (built once), the distinct tokens (signed once, for 12 h) (default ROOT/.data/bench)")
	skip := fs.String("skip", "", "scenarios to skip (comma list of 1…13: 9 introspection, 10 Redis Cluster, 11 distinct tokens, 12 cold start, 13 peers)")
	fs.StringVar(&cfg.Out, "out", "", "report path (default ROOT/docs/benchmarks.md)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	switch cfg.LoadGen {
	case "auto", "wrk", "go":
	default:
		return Config{}, fmt.Errorf("--loadgen %q: want auto, wrk or go", cfg.LoadGen)
	}
	if cfg.Runs == 0 {
		cfg.Runs = 3
		if cfg.Quick {
			cfg.Runs = 1
		}
	}
	for _, c := range []string{cfg.ServerCPUs, cfg.LoadCPUs} {
		if c != "" && exec.Command("taskset", "-c", c, "true").Run() != nil {
			fmt.Fprintf(stderr, "bench: cannot pin to CPUs %q (taskset missing or no such CPU): running unpinned\n", c)
			cfg.ServerCPUs, cfg.LoadCPUs = "", ""
		}
	}
	cfg.Skip = map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		cfg.Skip[strings.TrimSpace(s)] = true
	}
	cfg.Command = "bench " + strings.Join(args, " ")
	if cfg.Quick {
		cfg.Command = "make bench-quick  # " + cfg.Command
	} else {
		cfg.Command = "make bench  # " + cfg.Command
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return Config{}, fmt.Errorf("--root: %w", err)
	}
	cfg.Root = root
	if cfg.Cache == "" {
		cfg.Cache = filepath.Join(root, ".data", "bench")
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join(root, "docs", "benchmarks.md")
	}
	return cfg, nil
}
