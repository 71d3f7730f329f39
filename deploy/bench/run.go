package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// bench is one run of the benchmark: its settings, the processes it
// starts, and the report it fills.
type bench struct {
	cfg     Config
	plan    plan
	log     *logger
	logDir  string
	procs   *Procs
	servers *Servers
	load    *httpLoader
	tag     string // keeps emails and session ids unique across runs against one database
	rep     *Report
	cluster *Devstack // the Redis Cluster of scenario 10, once started
}

// plan is how much each scenario does.
type plan struct {
	n, refreshUsers int           // issuer workloads: n requests; refresh users × n refreshes
	d               time.Duration // one HTTP load run, and one ceiling run
	concs           []int         // HTTP load concurrencies
	propN           int           // logouts of the propagation scenario
	memSteps        []int         // revocation entries of the memory scenario
	distinct        []int         // distinct tokens in rotation, ascending
	peers           bool          // build and measure other projects' auth servers
}

func newPlan(quick bool) plan {
	if quick {
		return plan{n: 40, refreshUsers: 10, d: 400 * time.Millisecond,
			concs: []int{1, 64}, // wrk runs whole seconds
			propN: 20, memSteps: []int{10_000}, distinct: []int{10_000}}
	}
	return plan{n: 1000, refreshUsers: 10, d: 2 * time.Second, concs: []int{1, 16, 64},
		propN: 200, memSteps: []int{100_000, 1_000_000}, distinct: []int{10_000, 1_000_000}, peers: true}
}

// Concurrency of the issuer workloads and of the ceilings they are held to.
const issuerConc = 64

// stack is what the scenarios run against.
type stack struct {
	ds       *Devstack
	issuer   *Proc
	ic       *IssuerClient
	verifier *Proc // verifier-1; nil when bin/verifier did not start
}

// run runs every scenario cfg does not skip, logging to log and keeping the
// processes' logs in logDir, and returns the report, also when a scenario
// failed. Every process it started is stopped when it returns.
func run(ctx context.Context, cfg Config, log *logger, logDir string, load *httpLoader) (*Report, error) {
	procs := newProcs(logDir)
	defer procs.StopAll()
	servers, err := newServers(procs, filepath.Join(cfg.Root, "bin"))
	if err != nil {
		return nil, err
	}
	p := newPlan(cfg.Quick)
	b := &bench{cfg: cfg, plan: p, log: log, logDir: logDir, procs: procs, servers: servers, load: load,
		tag: strings.ToLower(rand.Text()[:6]),
		rep: &Report{Cfg: cfg, Started: time.Now().UTC(), Machine: describeMachine(), LoadGen: load.Name(),
			N: p.n, RefreshUsers: p.refreshUsers, PropN: p.propN, Concs: p.concs, HTTPRunTime: p.d,
			CeilingCommand: ceilingCommand(issuerConc, p.d)}}
	err = b.scenarios(ctx)
	b.rep.Duration = time.Since(b.rep.Started)
	b.rep.Machine.LoadEnd = loadAverage()
	return b.rep, err
}

// scenarios: start the stack → issuer scenarios (1–3) → HTTP servers (4
// and 8) → profiles → propagation (6) → memory (7) → with every process
// stopped, the sdk's Go benchmarks (5).
func (b *bench) scenarios(ctx context.Context) error {
	if b.cfg.Profile {
		if err := b.buildProfiled(); err != nil {
			return err
		}
	}
	if b.plan.peers && !b.cfg.Skip["13"] { // before anything runs: building takes the machine
		b.rep.Peers = buildPeers(ctx, b.log, filepath.Join(b.cfg.Cache, "peers"))
	}
	st, err := b.startStack(ctx)
	if err != nil {
		return err
	}
	if !b.cfg.Skip["1"] {
		if err := b.issuerScenarios(ctx, st); err != nil {
			return err
		}
	}
	targets, err := b.startTargets(ctx, st)
	if err != nil {
		return err
	}
	if !b.cfg.Skip["4"] {
		b.log.Printf("verifier and session servers: c=%v, %s each, %d runs (servers on CPUs %q, load on %q)",
			b.plan.concs, b.plan.d, b.cfg.Runs, b.cfg.ServerCPUs, b.cfg.LoadCPUs)
		b.rep.HTTP = runTargets(b.log, b.load, targets, b.plan.concs, b.cfg.Runs, b.plan.d)
		var asked []Target
		for _, t := range targets {
			if isVerifier(t.Name) || t.Name == tOAuth2Proxy || t.Name == tOathkeeper {
				asked = append(asked, t)
			}
		}
		b.rep.Logout = b.logoutCheck(ctx, st, asked)
	}
	if !b.cfg.Skip["11"] {
		for _, t := range targets {
			if t.Name == tBareHdr {
				if err := b.distinctScenario(ctx, st, t.URL); err != nil {
					b.note("distinct tokens: %v", err)
				}
			}
		}
	}
	if b.cfg.Profile {
		b.profiles(ctx, st.ic, targets)
	}
	if !b.cfg.Skip["6"] {
		if err := b.propagationScenario(ctx, st); err != nil {
			return err
		}
	}
	if !b.cfg.Skip["7"] {
		b.memoryScenario(ctx, st)
	}
	if !b.cfg.Skip["9"] {
		b.introspectionScenario(ctx, st)
	}
	if !b.cfg.Skip["12"] {
		b.coldStartScenario(ctx, st)
	}
	b.procs.StopAll()
	if !b.cfg.Skip["5"] {
		gb, err := runGoBench(ctx, b.log, b.cfg.Root, b.cfg.Quick)
		if err != nil {
			b.note("sdk Go benchmarks: %v", err)
		}
		b.rep.GoBench = gb
	}
	return nil
}

// note logs a note and keeps it for the report.
func (b *bench) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.log.Printf("NOTE: %s", s)
	b.rep.Notes = append(b.rep.Notes, s)
}

// startStack starts the dev stack and a first issuer on it.
func (b *bench) startStack(ctx context.Context) (*stack, error) {
	b.log.Printf("dev stack")
	// Not pinned either: MongoDB and Redis serve the issuer workloads, which
	// had the whole machine in the Authix baseline.
	ds, err := b.procs.StartDevstack(ctx, filepath.Join(b.cfg.Root, "bin", "devstack"), "")
	if err != nil {
		return nil, err
	}
	if b.cfg.MongoURI != "" { // a real MongoDB instead of the dev stack's FerretDB
		ds.Env["JOTGUARD_MONGO_URI"] = b.cfg.MongoURI
		b.note("MongoDB: %s, not the dev stack's FerretDB", redactURI(b.cfg.MongoURI))
	}
	st := &stack{ds: ds}
	return st, b.freshIssuer(ctx, st, 0)
}

// freshIssuer replaces the stack's issuer by one on an empty database, for
// run r. The issuer is not pinned: the Authix baseline had the whole
// machine, and argon2id wants every core. Each run gets a fresh issuer (as
// the Authix baseline had): the dev stack's FerretDB finds a user by _id in
// time that grows with the collection, so runs on one database drift.
func (b *bench) freshIssuer(ctx context.Context, st *stack, r int) error {
	st.issuer.Stop()
	db := fmt.Sprintf("bench%s%d", b.tag, r)
	p, ic, err := b.servers.Issuer(ctx, st.ds, "", db, b.tag)
	if err != nil {
		return err
	}
	st.issuer, st.ic = p, ic
	b.log.Printf("issuer at %s (database %s)", ic.Base, db)
	return nil
}

// issuerScenarios are 1–3: per run, the Authix workloads against a fresh
// issuer, then the ceilings they are held to.
func (b *bench) issuerScenarios(ctx context.Context, st *stack) error {
	for r := range b.cfg.Runs {
		if r > 0 {
			if err := b.freshIssuer(ctx, st, r); err != nil {
				return err
			}
		}
		b.log.Printf("run %d: Authix workloads (n=%d, c=%d)", r+1, b.plan.n, issuerConc)
		res, err := authixWorkloads(ctx, b.log, st.ic, watchIssuer(st.issuer, st.ds), r, issuerConc, b.plan.n, b.plan.refreshUsers)
		if err != nil {
			return err
		}
		for _, x := range []Result{res.Register, res.Login, res.RegisterLogin, res.Refresh} {
			b.log.Printf("  %-16s %6d in %8s  %7.0f req/s  p50 %-8s p99 %-8s errors %d %s", x.Name, x.N,
				x.Elapsed.Round(time.Millisecond), x.RPS(), x.Q(.5).Round(time.Millisecond/10),
				x.Q(.99).Round(time.Millisecond/10), x.Errors, x.FirstErr)
		}
		b.rep.Issuer = append(b.rep.Issuer, res)
		if err := b.ceilings(ctx, st); err != nil {
			return err
		}
		if !b.cfg.Skip["10"] {
			if err := b.clusterScenario(ctx, st, r, res.refreshUsers); err != nil {
				b.note("%v", err)
			}
		}
	}
	return nil
}

// ceilings measures the /access_token and argon2id ceilings of one run.
func (b *bench) ceilings(ctx context.Context, st *stack) error {
	ce, err := refreshCeiling(ctx, b.cfg.Root, "sign+rotate", st.ds.Env["JOTGUARD_REDIS_URL"], issuerConc, b.plan.d)
	if err != nil {
		return err
	}
	b.log.Printf("  sign+rotate ceiling %7.0f ops/s (errors %d)", ce.RPS(), ce.Errors)
	b.rep.Ceiling = append(b.rep.Ceiling, ce)
	ac, err := argon2Ceiling(19456, 2, 1, map[bool]int{true: 4, false: 15}[b.cfg.Quick])
	if err != nil {
		return err
	}
	b.log.Printf("  argon2id %s/hash → ceiling %.1f/s (%d cores); measured parallel %.1f/s", ac.HashTime.Round(time.Microsecond), ac.PerSec, ac.Cores, ac.Parallel)
	b.rep.Argon = append(b.rep.Argon, ac)
	return nil
}

// redactURI drops a password from a connection string for the report.
func redactURI(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URI)"
}
