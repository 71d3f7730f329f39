package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Report holds every figure of one bench run.
type Report struct {
	Cfg      Config
	Started  time.Time
	Duration time.Duration
	Machine  Machine
	Notes    []string // what did not run, and why

	N, RefreshUsers int
	Issuer          []IssuerResults
	Ceiling         []Result
	CeilingCommand  string // the go test command of the /access_token ceiling
	Argon           []Argon2Ceiling
	Cluster         []ClusterResults // per run, when the Redis Cluster scenario ran
	ClusterURL      string

	Concs       []int
	HTTPRunTime time.Duration // one HTTP load run, as asked of the generator
	HTTP        map[string]map[int][]Result
	HTTPOrder   []string
	LoadGen     string // "wrk" or "go"
	VerifierOK  bool

	Distinct *Distinct
	Peers    []PeerBuild  // built (or not) in this run; nil: peers not measured
	Logout   *LogoutCheck // the "logout → rejected?" column
	Prop     *Propagation
	PropN    int
	Mem      *Memory
	Cold     *ColdStart // scenario 12
	GoBench  *GoBench
	Profiles []Profile
	Intro    *Introspection // scenario 9
}

// Target names, in report order.
const (
	tBare    = "bare net/http (= direct upstream)"
	tBareHdr = "bare net/http, forward-auth request"
	tForward = "verifier /authz/forward-auth"
	tProxy   = "verifier reverse proxy → bare"
	tJWT     = "sdk.Middleware, cache on"
	tNoCache = "verifier /authz/forward-auth, cache off"
	tSession = "Redis session lookup"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// httpFigure is one target at one concurrency over its runs.
type httpFigure struct {
	RPS, Lo, Hi float64       // median req/s, and its range
	P50, P99    time.Duration // medians
	Errors      int           // over all runs
	OK          bool          // false: not measured
}

// httpFig is the figure of target at concurrency c.
func (r *Report) httpFig(target string, c int) httpFigure { return figOf(r.HTTP[target][c]) }

// fig is the figure of target with n distinct tokens.
func (d *Distinct) fig(target string, n int) httpFigure { return figOf(d.HTTP[target][n]) }

// figOf is the figure of the runs rs of one target and load.
func figOf(rs []Result) httpFigure {
	if len(rs) == 0 {
		return httpFigure{}
	}
	f := httpFigure{OK: true}
	var v []float64
	var a, b []time.Duration
	for _, x := range rs {
		v = append(v, x.RPS())
		a = append(a, x.Q(.5))
		b = append(b, x.Q(.99))
		f.Errors += x.Errors
	}
	f.Lo, f.Hi = spreadF(v)
	f.RPS, f.P50, f.P99 = medianF(v), median(a), median(b)
	return f
}

func (r *Report) issuerFig(pick func(IssuerResults) Result) (secs, rps []float64, p50, p99 []time.Duration, errs int) {
	for _, x := range r.Issuer {
		res := pick(x)
		secs = append(secs, res.Elapsed.Seconds())
		rps = append(rps, res.RPS())
		p50 = append(p50, res.Q(.5))
		p99 = append(p99, res.Q(.99))
		errs += res.Errors
	}
	return
}

// md is Markdown being written.
type md struct{ strings.Builder }

// p writes one line: format with args.
func (b *md) p(format string, args ...any) { fmt.Fprintf(&b.Builder, format+"\n", args...) }

// writeReport writes the report to path, and its charts to img/ beside it.
// Each section writes nothing when its scenario did not run.
func writeReport(r *Report, path string, log *logger) error {
	img := filepath.Join(filepath.Dir(path), "img")
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	charts := drawCharts(r, img, log)
	var b md
	for _, section := range []func(*md){
		r.writeHeader, r.writeMachine, r.writeGoals,
		r.writeIssuerWorkloads, r.writeRefreshCeiling, r.writeArgonCeiling, // 1–3
		r.writeCluster,                         // 10
		func(b *md) { r.writeHTTP(b, charts) }, // 4 and 8
		r.writeDistinct, r.writePeers,          // 11, 13
		r.writeGoBench, r.writePropagation, r.writeMemory, r.writeProfiles, // 5–7
		r.writeIntrospection,                        // 9
		func(b *md) { r.writeColdStart(b, charts) }, // 12
	} {
		section(&b)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (r *Report) writeHeader(b *md) {
	mode := "full"
	if r.Cfg.Quick {
		mode = "quick (small counts, 1 run each: a smoke run, not figures to quote)"
	}
	b.p("# jotguard benchmarks")
	b.p("")
	b.p("Written by `deploy/bench`. Mode: **%s**. Started %s, took %s.", mode, r.Started.Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	b.p("")
	b.p("Command: `%s` (from the repository root).", r.Cfg.Command)
	b.p("")
}

func (r *Report) writeMachine(b *md) {
	b.p("## Machine")
	b.p("")
	b.p("| | |\n|---|---|")
	b.p("| CPU | %s |", r.Machine.CPU)
	b.p("| nproc | %d |", r.Machine.NProc)
	b.p("| memory | %d MiB |", r.Machine.MemMiB)
	b.p("| kernel | %s |", r.Machine.Kernel)
	b.p("| Go | %s |", r.Machine.Go)
	b.p("| Redis | %s |", r.Machine.Redis)
	b.p("| load average at start | %s |", r.Machine.Load)
	if r.Machine.LoadEnd != "" {
		b.p("| load average at the end | %s |", r.Machine.LoadEnd)
	}
	b.p("")
	if busy := busyMachine(r.Machine); busy != "" {
		b.p("**The machine was busy with other work** (%s on %d cores): every figure of this run is held down by that, the ratios less than the rates, and the ratios of runs that did not overlap the same load (the ceilings run after their workloads) least reliably.", busy, r.Machine.NProc)
		b.p("")
	}
	b.p("The machine is shared: absolute numbers are noisy. Every figure with a ceiling is reported as a ratio to that ceiling measured **in the same run**, and runs of different targets are interleaved so that drift hits them alike.")
	b.p("")
	b.p("**Pinning.** Servers under HTTP load (bin/verifier, the bare handler, the sdk and Redis-session servers, the peers) run under `taskset -c %s`; every HTTP load run of scenarios 4, 8, 10 and 11 (wrk, or `bench load` without it) under `taskset -c %s`. The issuer and the dev stack (MongoDB/FerretDB, Redis, Kafka) are **not** pinned: the Authix baseline used the whole machine and argon2id wants every core; the issuer workloads run from the unpinned bench process, and the ceilings in unpinned processes of their own. Taskset available: %v.", r.Cfg.ServerCPUs, r.Cfg.LoadCPUs, r.Machine.Taskset)
	b.p("")
}

// writeGoals writes the goals table and the run's notes.
// busyMachine says how busy the machine was when a load average, at the
// start or at the end, was over 1.5 per core; "" otherwise.
func busyMachine(m Machine) string {
	var out []string
	for _, l := range []struct{ when, avg string }{{"at the start", m.Load}, {"at the end", m.LoadEnd}} {
		f := strings.Fields(l.avg)
		if len(f) == 0 {
			continue
		}
		if one, err := strconv.ParseFloat(f[0], 64); err == nil && one > 1.5*float64(m.NProc) {
			out = append(out, fmt.Sprintf("load average %s %s", f[0], l.when))
		}
	}
	return strings.Join(out, ", ")
}

func (r *Report) writeGoals(b *md) {
	b.p("## Goals")
	b.p("")
	b.p("| status | goal | target | measured |\n|---|---|---|---|")
	for _, g := range r.Goals() {
		b.p("| %s | %s | %s | %s |", g.Status(), g.Name, g.Target, g.Measured)
	}
	b.p("")
	if len(r.Notes) > 0 {
		b.p("Notes from this run:")
		b.p("")
		for _, n := range r.Notes {
			b.p("- %s", n)
		}
		b.p("")
	}
}
