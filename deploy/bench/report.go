package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

	Concs      []int
	HTTP       map[string]map[int][]Result
	HTTPOrder  []string
	LoadGen    string // "wrk" or "go"
	VerifierOK bool

	Prop     *Propagation
	PropN    int
	Mem      *Memory
	GoBench  *GoBench
	Profiles []Profile
}

func (r *Report) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	logf("NOTE: %s", s)
	r.Notes = append(r.Notes, s)
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

// http64 returns the median req/s and median p50/p99 of target at c.
func (r *Report) httpFig(target string, c int) (rps float64, p50, p99 time.Duration, lo, hi float64, errs int, ok bool) {
	rs := r.HTTP[target][c]
	if len(rs) == 0 {
		return 0, 0, 0, 0, 0, 0, false
	}
	var v []float64
	var a, b []time.Duration
	for _, x := range rs {
		v = append(v, x.RPS())
		a = append(a, x.Q(.5))
		b = append(b, x.Q(.99))
		errs += x.Errors
	}
	lo, hi = spreadF(v)
	return medianF(v), median(a), median(b), lo, hi, errs, true
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

func writeReport(r *Report, path string) error {
	img := filepath.Join(filepath.Dir(path), "img")
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	charts := drawCharts(r, img)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	mode := "full"
	if r.Cfg.Quick {
		mode = "quick (small counts, 1 run each: a smoke run, not figures to quote)"
	}
	p("# jotguard benchmarks")
	p("")
	p("Written by `deploy/bench` (issue 7). Mode: **%s**. Started %s, took %s.", mode, r.Started.Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	p("")
	p("Command: `%s` (from the repository root).", r.Cfg.Command)
	p("")
	p("## Machine")
	p("")
	p("| | |\n|---|---|")
	p("| CPU | %s |", r.Machine.CPU)
	p("| nproc | %d |", r.Machine.NProc)
	p("| memory | %d MiB |", r.Machine.MemMiB)
	p("| kernel | %s |", r.Machine.Kernel)
	p("| Go | %s |", r.Machine.Go)
	p("| Redis | %s |", r.Machine.Redis)
	p("| load average at start | %s |", r.Machine.Load)
	p("")
	p("The machine is shared: absolute numbers are noisy. Every figure with a ceiling is reported as a ratio to that ceiling measured **in the same run**, and runs of different targets are interleaved so that drift hits them alike.")
	p("")
	p("**Pinning.** Servers under HTTP load (bin/verifier, the bare handler, the sdk and Redis-session servers) run under `taskset -c %s`; every HTTP load run of scenarios 4 and 8 (wrk, or `bench load` without it) under `taskset -c %s`. The issuer and the dev stack (MongoDB/FerretDB, Redis, Kafka) are **not** pinned: the Authix baseline used the whole machine and argon2id wants every core; the issuer workloads run from the unpinned bench process, and the ceilings in unpinned processes of their own. Taskset available: %v.", r.Cfg.ServerCPUs, r.Cfg.LoadCPUs, r.Machine.Taskset)
	p("")
	p("## Goals (issue 7)")
	p("")
	p("| status | goal | target | measured |\n|---|---|---|---|")
	for _, g := range r.Goals() {
		p("| %s | %s | %s | %s |", g.Status(), g.Name, g.Target, g.Measured)
	}
	p("")
	if len(r.Notes) > 0 {
		p("Notes from this run:")
		p("")
		for _, n := range r.Notes {
			p("- %s", n)
		}
		p("")
	}

	if len(r.Issuer) > 0 {
		p("## 1. Authix workloads against bin/issuer (concurrency 64, %d run(s))", len(r.Issuer))
		p("")
		p("n = %d (the Authix workloads use 1000). /access_token: %d users, 64 sessions (worker w is a session of user w mod %d), %d refreshes in all, each session following its rotated `refresh_token` cookie on its own keep-alive connection, the request written as raw HTTP/1.1 (net/http's client cost about a quarter of the machine's CPU at this rate). \"login\" is a login-only pass over the registered users (for scenario 3). Median (min–max) over runs.", r.N, r.RefreshUsers, r.RefreshUsers, r.N*r.RefreshUsers)
		p("")
		p("| workload | time | req/s | p50 | p99 | errors | Authix 2 workers (scaled to n) |\n|---|---|---|---|---|---|---|")
		scale := float64(r.N) / 1000
		for _, w := range []struct {
			name   string
			pick   func(IssuerResults) Result
			authix float64
		}{
			{fmt.Sprintf("%d × /register", r.N), func(x IssuerResults) Result { return x.Register }, authixRegister},
			{fmt.Sprintf("%d × /register+/login", r.N), func(x IssuerResults) Result { return x.RegisterLogin }, authixRegisterLogin},
			{fmt.Sprintf("%d users × %d /access_token", r.RefreshUsers, r.N), func(x IssuerResults) Result { return x.Refresh }, authixRefresh},
			{fmt.Sprintf("%d × /login", r.N), func(x IssuerResults) Result { return x.Login }, 0},
		} {
			secs, rps, p50, p99, errs := r.issuerFig(w.pick)
			errTxt := fmt.Sprint(errs)
			for _, x := range r.Issuer {
				if e := w.pick(x).FirstErr; e != "" {
					k, _, _ := strings.Cut(e, ": {")
					errTxt += " (first: " + k + ")"
					break
				}
			}
			lo, hi := spreadF(secs)
			ax := "—"
			if w.authix > 0 {
				ax = fmt.Sprintf("%.2f s → %.1f× faster", w.authix*scale, w.authix*scale/medianF(secs))
			}
			p("| %s | %.2f s (%.2f–%.2f) | %.0f | %s | %s | %s | %s |", w.name, medianF(secs), lo, hi, medianF(rps), ms(median(p50)), ms(median(p99)), errTxt, ax)
		}
		p("")
		r.cpuTable(p)
		p("A 503 `busy` is the issuer's hashing backpressure (SPEC §2): a request that waits longer than `JOTGUARD_HASH_QUEUE_WAIT` (2 s) for one of the GOMAXPROCS hashing slots is refused with `Retry-After` instead of timing out. At concurrency 64 the last request in the queue waits 64 ÷ (hashes/s); it stays under 2 s only while the machine delivers more than 32 hashes/s, i.e. about 60 ms per hash per core or better (this run measured its hash time in section 3). The bench counts every 503 as an error and does not retry.")
		p("")
		p("## 2. /access_token vs its ceiling")
		p("")
		p("The ceiling is the issuer's own code, `%s` beside `issuer/internal/redisstore`, run in a process of its own (`%s`): 64 goroutines against the same Redis for the same time, each rotating its own session chain. Per operation, `redisstore.Sessions.Rotate` itself (GET of the token's route; one pipeline of the DEL of the route of the token the session's 16-token history forgot at the previous rotation, the successor's route SET and the rotate Lua script), plus one ES256 sign of an access token with the `sdk.Claims` of the rotated session's user snapshot. No HTTP, no cookie, no JSON, no load generator sharing the cores. A refresh reads no MongoDB: the claims come from the user snapshot in the session, re-read at most once per `JOTGUARD_USER_RECHECK` (1 min) per session, which the workload's few seconds never reach.", ceilingBench, r.CeilingCommand)
		p("")
		p("| run | /access_token req/s | sign+rotate ops/s | ratio |\n|---|---|---|---|")
		for i := range r.Issuer {
			if i < len(r.Ceiling) {
				a, c := r.Issuer[i].Refresh, r.Ceiling[i]
				p("| %d | %.0f | %.0f | %.2f× |", i+1, a.RPS(), c.RPS(), a.RPS()/c.RPS())
			}
		}
		p("")
		p("## 3. /register and /login vs the argon2id ceiling")
		p("")
		p("argon2id at the issuer's defaults (m=19456 KiB, t=2, p=1), in-process with golang.org/x/crypto/argon2: the median time of one hash on one goroutine; the ceiling is cores ÷ that time. \"parallel\" is measured with one goroutine per core.")
		p("")
		p("| run | hash time | ceiling /s | parallel /s | /register /s | ratio | /login /s | ratio |\n|---|---|---|---|---|---|---|---|")
		for i, a := range r.Argon {
			if i < len(r.Issuer) {
				x := r.Issuer[i]
				p("| %d | %s | %.1f | %.1f | %.1f | %.2f× | %.1f | %.2f× |", i+1, ms(a.HashTime), a.PerSec, a.Parallel,
					x.Register.RPS(), x.Register.RPS()/a.PerSec, x.Login.RPS(), x.Login.RPS()/a.PerSec)
			}
		}
		p("")
		r.argonGap(p)
	}
	if r.HTTP != nil {
		p("## 4 and 8. Verifier, bare handler, JWT vs server-side session")
		p("")
		p("Each target answers GET with a 200 (the verifier: an allow decision). Closed loop, keep-alive, %s per run, median (min–max) req/s over %d run(s). \"cache off\" is bin/verifier with `JOTGUARD_VERIFY_CACHE_SIZE=0`: every request parses the token and checks its ES256 signature. The sdk.Middleware server is the bench's own (`bench serve jwt`): the sdk engine the verifier wraps, in-process in the service (scenario 8's local JWT check). \"Redis session lookup\" does one Redis GET (and a JSON decode) per request: the server-side-session alternative of scenario 8.", r.httpRunTime(), r.Cfg.Runs)
		p("")
		p("| target | c | req/s | × bare | p50 | p99 | added p99 | errors |\n|---|---|---|---|---|---|---|---|")
		for _, t := range r.HTTPOrder {
			for _, c := range r.Concs {
				rps, p50, p99, lo, hi, errs, ok := r.httpFig(t, c)
				if !ok {
					continue
				}
				brps, _, bp99, _, _, _, _ := r.httpFig(tBare, c)
				p("| %s | %d | %.0f (%.0f–%.0f) | %.2f | %s | %s | %s | %d |", t, c, rps, lo, hi, rps/brps, ms(p50), ms(p99), ms(p99-bp99), errs)
			}
		}
		p("")
		for _, c := range charts {
			if strings.Contains(c, "latency") || strings.Contains(c, "throughput") {
				p("![%s](img/%s)", c, c)
				p("")
			}
		}
	}
	if g := r.GoBench; g != nil {
		p("## 5. sdk Verify: Go benchmarks")
		p("")
		p("`%s`, with every server stopped. BenchmarkVerifyCached runs with RunParallel: its ns/op is wall time per op over %d procs.", g.Command, r.Machine.NProc)
		p("")
		p("| benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|")
		for _, n := range g.Order {
			p("| %s | %.0f | %.0f | %.0f |", strings.TrimPrefix(n, "Benchmark"), g.Median(n, "ns/op"), g.Median(n, "B/op"), g.Median(n, "allocs/op"))
		}
		p("")
		if g.Benchstat != "" {
			p("benchstat:")
			p("")
			p("```")
			p("%s", strings.TrimSpace(g.Benchstat))
			p("```")
			p("")
		}
	}
	if pr := r.Prop; pr != nil {
		p("## 6. Revocation propagation")
		p("")
		p("%d sessions logged out one at a time (`POST /logout` with the Bearer access token, scope local). Before each logout both verifiers allow the token (so it sits in their verified-token cache); from the logout's response each verifier is polled back to back until it answers 401.", r.PropN)
		p("")
		p("| verifier | samples | p50 | p99 | max | never revoked (5 s) |\n|---|---|---|---|---|---|")
		for _, k := range slices.Sorted(mapsKeys(pr.Delays)) {
			d := pr.Delays[k]
			p("| %s | %d | %s | %s | %s | %d |", k, len(d), ms(quantile(d, .5)), ms(quantile(d, .99)), ms(slices.Max(d)), pr.Missing[k])
		}
		p("")
		p("![propagation CDF](img/propagation-cdf.png)")
		p("")
	}
	if m := r.Mem; m != nil {
		p("## 7. Verifier memory")
		p("")
		if m.Idle > 0 {
			p("bin/verifier pointed at a bench-owned JWKS (sdktest's ES256 key, `JOTGUARD_ISSUER` = its URL), so the bench can sign revocation SETs the verifier accepts; they go through Kafka (kfake) like the issuer's. Every event revokes a distinct session (`complex{user, session}`), so each is a live entry.")
			p("")
			p("Bytes per entry = (RSS with the entries − RSS just before the first injection, after the load) ÷ entries. RSS includes whatever the Go heap keeps as headroom (GOGC=100) after decoding and verifying the events, so it is an upper bound; the set's slot tables themselves live outside the Go heap.")
			p("")
			p("| state | RSS | set size (/metrics) | bytes per entry |\n|---|---|---|---|")
			p("| idle (ready, no traffic) | %.1f MiB | | |", float64(m.Idle)/(1<<20))
			p("| under load (c=64 forward-auth, %.0f req/s; peak) | %.1f MiB | | |", m.LoadResult.RPS(), float64(m.Loaded)/(1<<20))
			p("| after the load, before injection | %.1f MiB | | |", float64(m.Before)/(1<<20))
			for i, k := range m.Entries {
				p("| %d entries injected | %.1f MiB | %d | %.0f |", k, float64(m.RSS[i])/(1<<20), m.SetSize[i], float64(m.RSS[i]-m.Before)/float64(k))
			}
			p("")
		}
		p("In-process, the memory a `revocation.Set` holds: Go heap growth (after GC) and its open-addressing slot tables (`Set.Bytes`, 16-byte slots, load ≤ 3/4, mmap'd outside the Go heap so the GC's headroom does not double them):")
		p("")
		p("| entries | Go heap | slot tables | bytes per entry |\n|---|---|---|---|")
		for _, s := range m.InProc {
			p("| %d | %.1f MiB | %.1f MiB | %.1f |", s.Entries, float64(s.HeapBytes)/(1<<20), float64(s.TableBytes)/(1<<20), s.PerEntry())
		}
		p("")
	}
	if len(r.Profiles) > 0 {
		p("## Profiles")
		p("")
		p("`--profile`: CPU profiles taken with net/http/pprof, compiled into bin/issuer and bin/verifier for the run only through `go build -overlay` (their sources are unchanged). Files in the bench's log directory (printed at its start).")
		p("")
		for _, pr := range r.Profiles {
			p("### %s (%s)", pr.Name, pr.Load)
			p("")
			p("```")
			p("%s", strings.TrimSpace(pr.Top))
			p("```")
			p("")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// httpRunTime is the length of one run of scenarios 4 and 8 as the load
// generator ran it (wrk takes whole seconds).
func (r *Report) httpRunTime() string {
	d := 2 * time.Second
	if r.Cfg.Quick {
		d = 400 * time.Millisecond
	}
	if r.LoadGen == "wrk" {
		d = wrkDuration(d)
	}
	return fmt.Sprintf("%s (%s)", d, map[bool]string{true: "wrk, one thread, one connection per worker", false: "the bench's Go loader"}[r.LoadGen == "wrk"])
}

// cpuWorkloads are the issuer workloads whose CPU section 1 reports; the
// first two hash a password once per request.
var cpuWorkloads = []struct {
	name string
	pick func(IssuerResults) Result
}{
	{"/register", func(x IssuerResults) Result { return x.Register }},
	{"/login", func(x IssuerResults) Result { return x.Login }},
	{"/register+/login", func(x IssuerResults) Result { return x.RegisterLogin }},
	{"/access_token", func(x IssuerResults) Result { return x.Refresh }},
}

// cpuPerRequest is, per watched process, the median over runs of its CPU
// per request of the workload, in ms, and the median of "busy": the CPU of
// all processes ÷ (wall time × cores).
func (r *Report) cpuPerRequest(pick func(IssuerResults) Result) (perMS map[string]float64, busy float64) {
	per := map[string][]float64{}
	var b []float64
	for _, x := range r.Issuer {
		res := pick(x)
		if res.N == 0 {
			continue
		}
		var sum time.Duration
		for name, d := range res.CPU {
			per[name] = append(per[name], float64(d)/float64(res.N)/1e6)
			sum += d
		}
		b = append(b, sum.Seconds()/(res.Elapsed.Seconds()*float64(r.Machine.NProc)))
	}
	perMS = map[string]float64{}
	for name, v := range per {
		perMS[name] = medianF(v)
	}
	return perMS, medianF(b)
}

// cpuTable: CPU time per request of each watched process during the issuer
// workloads.
func (r *Report) cpuTable(p func(string, ...any)) {
	if len(r.Issuer) == 0 || r.Issuer[0].Register.CPU == nil {
		return
	}
	p("CPU time per request, by process (median over runs; from /proc/PID/stat, 10 ms ticks). \"busy\" is the sum over processes ÷ (wall time × %d cores): what the machine's cores gave the workload.", r.Machine.NProc)
	p("")
	head := "| workload |"
	for _, n := range cpuOrder {
		head += " " + n + " |"
	}
	p("%s busy |\n|---|%s---|", head, strings.Repeat("---|", len(cpuOrder)))
	for _, w := range cpuWorkloads {
		per, busy := r.cpuPerRequest(w.pick)
		row := "| " + w.name + " |"
		for _, n := range cpuOrder {
			if v, ok := per[n]; ok {
				row += fmt.Sprintf(" %.2f ms |", v)
			} else {
				row += " — |"
			}
		}
		p("%s %.0f%% |", row, 100*busy)
	}
	p("")
}

// argonGap says where a hashing endpoint's CPU goes beyond the hash, from
// the per-process CPU of section 1, and what the cores would allow without
// the dev stack's share.
func (r *Report) argonGap(p func(string, ...any)) {
	if len(r.Issuer) == 0 || r.Issuer[0].Login.CPU == nil || len(r.Argon) == 0 {
		return
	}
	var hash []time.Duration
	var ceil []float64
	for _, a := range r.Argon {
		hash, ceil = append(hash, a.HashTime), append(ceil, a.PerSec)
	}
	cores := float64(r.Machine.NProc)
	var without []string
	for _, w := range cpuWorkloads[:2] {
		per, _ := r.cpuPerRequest(w.pick)
		var total float64
		for _, n := range cpuOrder {
			total += per[n]
		}
		p("- %s: %.1f ms of CPU per request on the machine, for one %.1f ms hash: the issuer %.1f ms, the dev stack %.1f ms, Redis and the load generator %.1f ms. At that CPU per request the cores allow %.0f/s.",
			w.name, total, float64(median(hash))/1e6, per["issuer"], per[devstackProc],
			per["redis-server"]+per["bench (load)"], cores*1000/total)
		if rest := total - per[devstackProc]; rest > 0 {
			rate := cores * 1000 / rest
			without = append(without, fmt.Sprintf("%s %.0f/s (%.2f× the ceiling)", w.name, rate, rate/medianF(ceil)))
		}
	}
	p("")
	p("In the /login profile below, argon2id (its compute, and zeroing the 19 MiB block golang.org/x/crypto/argon2 allocates per call, which the ceiling pays too) is about 93%% of the issuer's CPU; the rest, about 2 ms a request, is GC, HTTP, JSON, the MongoDB and Redis clients and the ES256 sign. The dev stack's share is FerretDB's: on SQLite it finds a document by `_id` by scanning the table in insertion order (its `_id` index is on `_ferretdb_sjson->\"_id\"`, its query on `_ferretdb_sjson->'$._id'`, so SQLite never uses the index; `EXPLAIN QUERY PLAN` says SCAN), so a lookup costs 0.4 ms for the first user and about 5 ms for the 3000th; a login does two (`user_emails`, then `users`), a registration three inserts. On MongoDB these are index operations; without the dev stack's CPU the cores would allow, by the same arithmetic, %s. That is an estimate, not a measurement: this machine has no MongoDB.", strings.Join(without, " and "))
	p("")
}
