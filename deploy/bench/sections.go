package main

// The report's scenario sections, in report order: each writes nothing
// when its scenario did not run.

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// writeIssuerWorkloads is section 1: the Authix workloads, and the CPU
// each process spent on them.
func (r *Report) writeIssuerWorkloads(b *md) {
	if len(r.Issuer) == 0 {
		return
	}
	b.p("## 1. Authix workloads against bin/issuer (concurrency 64, %d run(s))", len(r.Issuer))
	b.p("")
	b.p("n = %d (the Authix workloads use 1000). /access_token: %d users, 64 sessions (worker w is a session of user w mod %d), %d refreshes in all, each session following its rotated `refresh_token` cookie on its own keep-alive connection, the request written as raw HTTP/1.1 from a reused buffer and the answer read by a minimal parser (net/http's client cost about a quarter of the machine's CPU at this rate, and http.ReadResponse alone about 35 µs a refresh). \"login\" is a login-only pass over the registered users (for scenario 3). Median (min–max) over runs.", r.N, r.RefreshUsers, r.RefreshUsers, r.N*r.RefreshUsers)
	b.p("")
	b.p("| workload | time | req/s | p50 | p99 | errors | Authix 2 workers (scaled to n) |\n|---|---|---|---|---|---|---|")
	r.issuerRow(b, fmt.Sprintf("%d × /register", r.N), func(x IssuerResults) Result { return x.Register }, authixRegister)
	r.issuerRow(b, fmt.Sprintf("%d × /register+/login", r.N), func(x IssuerResults) Result { return x.RegisterLogin }, authixRegisterLogin)
	r.issuerRow(b, fmt.Sprintf("%d users × %d /access_token", r.RefreshUsers, r.N), func(x IssuerResults) Result { return x.Refresh }, authixRefresh)
	r.issuerRow(b, fmt.Sprintf("%d × /login", r.N), func(x IssuerResults) Result { return x.Login }, 0)
	b.p("")
	r.cpuTable(b)
	b.p("A 503 `busy` is the issuer's hashing backpressure: a request that waits longer than `JOTGUARD_HASH_QUEUE_WAIT` (2 s) for one of the GOMAXPROCS hashing slots is refused with `Retry-After` instead of timing out. At concurrency 64 the last request in the queue waits 64 ÷ (hashes/s); it stays under 2 s only while the machine delivers more than 32 hashes/s, i.e. about 60 ms per hash per core or better (this run measured its hash time in section 3). The bench counts every 503 as an error and does not retry.")
	b.p("")
}

// issuerRow is one workload's row of section 1; authix is the Authix
// baseline's seconds for 1000 (0: none).
func (r *Report) issuerRow(b *md, name string, pick func(IssuerResults) Result, authix float64) {
	secs, rps, p50, p99, errs := r.issuerFig(pick)
	errTxt := fmt.Sprint(errs)
	for _, x := range r.Issuer {
		if e := pick(x).FirstErr; e != "" {
			k, _, _ := strings.Cut(e, ": {")
			errTxt += " (first: " + k + ")"
			break
		}
	}
	lo, hi := spreadF(secs)
	ax := "—"
	if scale := float64(r.N) / 1000; authix > 0 {
		ax = fmt.Sprintf("%.2f s → %.1f× faster", authix*scale, authix*scale/medianF(secs))
	}
	b.p("| %s | %.2f s (%.2f–%.2f) | %.0f | %s | %s | %s | %s |", name, medianF(secs), lo, hi, medianF(rps), ms(median(p50)), ms(median(p99)), errTxt, ax)
}

// writeRefreshCeiling is section 2: /access_token against the issuer's own
// sign+rotate code without HTTP.
func (r *Report) writeRefreshCeiling(b *md) {
	if len(r.Issuer) == 0 {
		return
	}
	b.p("## 2. /access_token vs its ceiling")
	b.p("")
	b.p("The issuer runs with every rate limit on, as in production, with budgets of 10⁹ a minute that the load (all from one address) never spends: each refresh makes the Redis call of its per-network limit. That call rides in the rotation's first round trip (redis_rate's GCRA script in one pipeline with the GETEX of the session's route), so a refresh is two round trips to Redis, as in the ceiling, which has no rate limit.")
	b.p("")
	b.p("The ceiling is the issuer's own code, `%s` beside `issuer/internal/redisstore`, run in a process of its own (`%s`): 64 goroutines against the same Redis for the same time, each rotating its own session chain. Per operation, `redisstore.Sessions.Rotate` itself (its two round trips: GETEX of the session's route, then the rotate Lua script), plus one ES256 sign of an access token with the `sdk.Claims` of the rotated session's user snapshot. No HTTP, no cookie, no JSON, no load generator sharing the cores. A refresh reads no MongoDB: the claims come from the user snapshot in the session, re-read at most once per `JOTGUARD_USER_RECHECK` (1 min) per session, which the workload's few seconds never reach.", ceilingBench, r.CeilingCommand)
	b.p("")
	b.p("| run | /access_token req/s | sign+rotate ops/s | ratio |\n|---|---|---|---|")
	for i := range r.Issuer {
		if i < len(r.Ceiling) {
			a, c := r.Issuer[i].Refresh, r.Ceiling[i]
			b.p("| %d | %.0f | %.0f | %.2f× |", i+1, a.RPS(), c.RPS(), a.RPS()/c.RPS())
		}
	}
	b.p("")
	r.refreshCPU(b)
}

// refreshCPU compares the CPU a refresh costs through HTTP with what the
// ceiling's op costs, per process (median over runs, µs).
func (r *Report) refreshCPU(b *md) {
	per := func(res Result, name string) (float64, bool) {
		d, ok := res.CPU[name]
		if !ok || res.N == 0 {
			return 0, false
		}
		return float64(d) / float64(res.N) / 1e3, true
	}
	var iss, red, load, cp, cr []float64
	for i, x := range r.Issuer {
		if v, ok := per(x.Refresh, "issuer"); ok {
			iss = append(iss, v)
			rv, _ := per(x.Refresh, "redis-server")
			lv, _ := per(x.Refresh, "bench (load)")
			red, load = append(red, rv), append(load, lv)
		}
		if i < len(r.Ceiling) {
			if v, ok := per(r.Ceiling[i], ceilingProc); ok {
				rv, _ := per(r.Ceiling[i], "redis-server")
				cp, cr = append(cp, v), append(cr, rv)
			}
		}
	}
	if len(iss) == 0 || len(cp) == 0 {
		return
	}
	b.p("CPU per refresh, in µs (median over runs): the issuer's and the load generator's from /proc (10 ms ticks), Redis's from its `INFO cpu`; the ceiling's process from getrusage. The gap between the two totals is what HTTP, the cookie, the JSON answer, the rate limit's script and the load generator cost.")
	b.p("")
	b.p("| | Go process | redis-server | load generator | total |\n|---|---|---|---|---|")
	b.p("| /access_token over HTTP | %.1f (issuer) | %.1f | %.1f | %.1f |", medianF(iss), medianF(red), medianF(load), medianF(iss)+medianF(red)+medianF(load))
	b.p("| ceiling (sign + rotate) | %.1f (go test) | %.1f | — | %.1f |", medianF(cp), medianF(cr), medianF(cp)+medianF(cr))
	b.p("")
}

// writeArgonCeiling is section 3: /register and /login against the
// argon2id ceiling, and where their CPU goes beyond the hash.
func (r *Report) writeArgonCeiling(b *md) {
	if len(r.Issuer) == 0 {
		return
	}
	b.p("## 3. /register and /login vs the argon2id ceiling")
	b.p("")
	b.p("argon2id at the issuer's defaults (m=19456 KiB, t=2, p=1), in-process with golang.org/x/crypto/argon2: the median time of one hash on one goroutine; the ceiling is cores ÷ that time. \"parallel\" is measured with one goroutine per core.")
	b.p("")
	b.p("| run | hash time | ceiling /s | parallel /s | /register /s | ratio | /login /s | ratio |\n|---|---|---|---|---|---|---|---|")
	for i, a := range r.Argon {
		if i < len(r.Issuer) {
			x := r.Issuer[i]
			b.p("| %d | %s | %.1f | %.1f | %.1f | %.2f× | %.1f | %.2f× |", i+1, ms(a.HashTime), a.PerSec, a.Parallel,
				x.Register.RPS(), x.Register.RPS()/a.PerSec, x.Login.RPS(), x.Login.RPS()/a.PerSec)
		}
	}
	b.p("")
	r.argonGap(b)
}

// writeHTTP is sections 4 and 8: every HTTP target at every concurrency,
// and the charts drawn of them.
func (r *Report) writeHTTP(b *md, charts []string) {
	if r.HTTP == nil {
		return
	}
	b.p("## 4 and 8. Verifier, bare handler, JWT vs server-side session")
	b.p("")
	b.p("Each target answers GET with a 200 (the verifier: an allow decision). Closed loop, keep-alive, %s per run, median (min–max) req/s over %d run(s). \"cache off\" is bin/verifier with `JOTGUARD_VERIFY_CACHE_SIZE=0`: every request parses the token and checks its ES256 signature. The sdk.Middleware server is the bench's own (`bench serve jwt`): the sdk engine the verifier wraps, in-process in the service (scenario 8's local JWT check). \"Redis session lookup\" does one Redis GET (and a JSON decode) per request: the server-side-session alternative of scenario 8.", r.httpRunTime(), r.Cfg.Runs)
	b.p("")
	b.p("| target | c | req/s | × bare | p50 | p99 | added p99 | errors |\n|---|---|---|---|---|---|---|---|")
	for _, t := range r.HTTPOrder {
		for _, c := range r.Concs {
			f := r.httpFig(t, c)
			if !f.OK {
				continue
			}
			bare := r.httpFig(tBare, c)
			b.p("| %s | %d | %.0f (%.0f–%.0f) | %.2f | %s | %s | %s | %d |", t, c, f.RPS, f.Lo, f.Hi, f.RPS/bare.RPS, ms(f.P50), ms(f.P99), ms(f.P99-bare.P99), f.Errors)
		}
	}
	b.p("")
	for _, c := range charts {
		if strings.Contains(c, "latency") || strings.Contains(c, "throughput") {
			b.p("![%s](img/%s)", c, c)
			b.p("")
		}
	}
}

// writeGoBench is section 5: the sdk's Go benchmarks.
func (r *Report) writeGoBench(b *md) {
	g := r.GoBench
	if g == nil {
		return
	}
	b.p("## 5. sdk Verify: Go benchmarks")
	b.p("")
	b.p("`%s`, with every server stopped. BenchmarkVerifyCached runs with RunParallel: its ns/op is wall time per op over %d procs.", g.Command, r.Machine.NProc)
	b.p("")
	b.p("| benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|")
	for _, n := range g.Order {
		b.p("| %s | %.0f | %.0f | %.0f |", strings.TrimPrefix(n, "Benchmark"), g.Median(n, "ns/op"), g.Median(n, "B/op"), g.Median(n, "allocs/op"))
	}
	b.p("")
	if g.Benchstat != "" {
		b.p("benchstat:")
		b.p("")
		b.code(g.Benchstat)
	}
}

// code writes text as a fenced block.
func (b *md) code(text string) {
	b.p("```")
	b.p("%s", strings.TrimSpace(text))
	b.p("```")
	b.p("")
}

// writePropagation is section 6: logout response → first 401, per verifier.
func (r *Report) writePropagation(b *md) {
	pr := r.Prop
	if pr == nil {
		return
	}
	b.p("## 6. Revocation propagation")
	b.p("")
	b.p("%d sessions logged out one at a time (`POST /logout` with the Bearer access token, scope local). Before each logout both verifiers allow the token (so it sits in their verified-token cache); from the logout's response each verifier is polled back to back until it answers 401.", r.PropN)
	b.p("")
	b.p("| verifier | samples | p50 | p99 | max | never revoked (5 s) |\n|---|---|---|---|---|---|")
	for _, k := range slices.Sorted(maps.Keys(pr.Delays)) {
		d := pr.Delays[k]
		b.p("| %s | %d | %s | %s | %s | %d |", k, len(d), ms(quantile(d, .5)), ms(quantile(d, .99)), ms(slices.Max(d)), pr.Missing[k])
	}
	b.p("")
	b.p("![propagation CDF](img/propagation-cdf.png)")
	b.p("")
}

// writeMemory is section 7: bin/verifier's RSS, and a revocation.Set's
// memory in-process.
func (r *Report) writeMemory(b *md) {
	m := r.Mem
	if m == nil {
		return
	}
	b.p("## 7. Verifier memory")
	b.p("")
	if m.Idle > 0 {
		b.p("bin/verifier pointed at a bench-owned JWKS (sdktest's ES256 key, `JOTGUARD_ISSUER` = its URL), so the bench can sign revocation SETs the verifier accepts; they go through Kafka (kfake) like the issuer's. Every event revokes a distinct session (`complex{user, session}`), so each is a live entry.")
		b.p("")
		b.p("Bytes per entry = (RSS with the entries − RSS just before the first injection, after the load) ÷ entries. RSS includes whatever the Go heap keeps as headroom (GOGC=100) after decoding and verifying the events, so it is an upper bound; the set's slot tables themselves live outside the Go heap.")
		b.p("")
		b.p("| state | RSS | set size (/metrics) | bytes per entry |\n|---|---|---|---|")
		b.p("| idle (ready, no traffic) | %.1f MiB | | |", float64(m.Idle)/(1<<20))
		b.p("| under load (c=64 forward-auth, %.0f req/s; peak) | %.1f MiB | | |", m.LoadResult.RPS(), float64(m.Loaded)/(1<<20))
		b.p("| after the load, before injection | %.1f MiB | | |", float64(m.Before)/(1<<20))
		for i, k := range m.Entries {
			b.p("| %d entries injected | %.1f MiB | %d | %.0f |", k, float64(m.RSS[i])/(1<<20), m.SetSize[i], float64(m.RSS[i]-m.Before)/float64(k))
		}
		b.p("")
	}
	b.p("In-process, the memory a `revocation.Set` holds: Go heap growth (after GC) and its open-addressing slot tables (`Set.Bytes`, 16-byte slots, load ≤ 3/4, mmap'd outside the Go heap so the GC's headroom does not double them):")
	b.p("")
	b.p("| entries | Go heap | slot tables | bytes per entry |\n|---|---|---|---|")
	for _, s := range m.InProc {
		b.p("| %d | %.1f MiB | %.1f MiB | %.1f |", s.Entries, float64(s.HeapBytes)/(1<<20), float64(s.TableBytes)/(1<<20), s.PerEntry())
	}
	b.p("")
}

// writeProfiles writes the top functions of each CPU profile (--profile).
func (r *Report) writeProfiles(b *md) {
	if len(r.Profiles) == 0 {
		return
	}
	b.p("## Profiles")
	b.p("")
	b.p("`--profile`: CPU profiles taken with net/http/pprof, compiled into bin/issuer and bin/verifier for the run only through `go build -overlay` (their sources are unchanged). Files in the bench's log directory (printed at its start).")
	b.p("")
	for _, pr := range r.Profiles {
		b.p("### %s (%s)", pr.Name, pr.Load)
		b.p("")
		b.code(pr.Top)
	}
}

// httpRunTime is the length of one run of scenarios 4 and 8 as the load
// generator ran it (wrk takes whole seconds).
func (r *Report) httpRunTime() string {
	d := r.HTTPRunTime
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
func (r *Report) cpuTable(b *md) {
	if len(r.Issuer) == 0 || r.Issuer[0].Register.CPU == nil {
		return
	}
	b.p("CPU time per request, by process (median over runs; from /proc/PID/stat, 10 ms ticks). \"busy\" is the sum over processes ÷ (wall time × %d cores): what the machine's cores gave the workload.", r.Machine.NProc)
	b.p("")
	head := "| workload |"
	for _, n := range cpuOrder {
		head += " " + n + " |"
	}
	b.p("%s busy |\n|---|%s---|", head, strings.Repeat("---|", len(cpuOrder)))
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
		b.p("%s %.0f%% |", row, 100*busy)
	}
	b.p("")
}

// argonGap says where a hashing endpoint's CPU goes beyond the hash, from
// the per-process CPU of section 1, and what the cores would allow without
// the dev stack's share.
func (r *Report) argonGap(b *md) {
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
		b.p("- %s: %.1f ms of CPU per request on the machine, for one %.1f ms hash: the issuer %.1f ms, the dev stack %.1f ms, Redis and the load generator %.1f ms. At that CPU per request the cores allow %.0f/s.",
			w.name, total, float64(median(hash))/1e6, per["issuer"], per[devstackProc],
			per["redis-server"]+per["bench (load)"], cores*1000/total)
		if rest := total - per[devstackProc]; rest > 0 {
			rate := cores * 1000 / rest
			without = append(without, fmt.Sprintf("%s %.0f/s (%.2f× the ceiling)", w.name, rate, rate/medianF(ceil)))
		}
	}
	b.p("")
	b.p("In the /login profile below, argon2id (its compute, and zeroing the 19 MiB block golang.org/x/crypto/argon2 allocates per call, which the ceiling pays too) is about 93%% of the issuer's CPU; the rest, about 2 ms a request, is GC, HTTP, JSON, the MongoDB and Redis clients and the ES256 sign. The dev stack's share is FerretDB's: on SQLite it finds a document by `_id` by scanning the table in insertion order (its `_id` index is on `_ferretdb_sjson->\"_id\"`, its query on `_ferretdb_sjson->'$._id'`, so SQLite never uses the index; `EXPLAIN QUERY PLAN` says SCAN), so a lookup costs 0.4 ms for the first user and about 5 ms for the 3000th; a login does two (`user_emails`, then `users`), a registration three inserts. On MongoDB these are index operations; without the dev stack's CPU the cores would allow, by the same arithmetic, %s. That is an estimate, not a measurement: this machine has no MongoDB.", strings.Join(without, " and "))
	b.p("")
}

// writeCluster is section 9: /access_token with the sessions in a Redis
// Cluster, beside one Redis.
func (r *Report) writeCluster(b *md) {
	if len(r.Cluster) == 0 {
		return
	}
	b.p("## 10. /access_token on a Redis Cluster")
	b.p("")
	b.p("The dev stack's Redis Cluster (`devstack --only redis --redis-cluster`): three redis-server masters sharing the 16384 slots, no replicas, on this machine (`JOTGUARD_REDIS_URL=%s`, which the issuer reads as a Cluster). Per run, right after the single-Redis workload of section 1, a second issuer on the same database and the cluster runs the same /access_token workload (the same users, %d sessions logged in on it, the same count), then the sign+rotate ceiling of section 2 runs on the cluster (not in a quick run). A session's keys share its user's hash tag, so each Lua script runs on one master; the chain's route and the rate limit's key have slots of their own, so the first round trip is a pipeline that go-redis splits by master. The three masters share the same two cores as everything else: the cluster costs more CPU per refresh here than it would spread over machines.", r.ClusterURL, r.Cluster[0].Refresh.Conc)
	b.p("")
	b.p("| run | one Redis req/s | cluster req/s | × one Redis | cluster p50 | cluster p99 | errors | ceiling on the cluster /s | × ceiling |\n|---|---|---|---|---|---|---|---|---|")
	for i, c := range r.Cluster {
		single := 0.0
		if i < len(r.Issuer) {
			single = r.Issuer[i].Refresh.RPS()
		}
		x, ceil, ratio := c.Refresh, "—", "—"
		if c.Ceiling.N > 0 {
			ceil, ratio = fmt.Sprintf("%.0f", c.Ceiling.RPS()), fmt.Sprintf("%.2f×", x.RPS()/c.Ceiling.RPS())
		}
		b.p("| %d | %.0f | %.0f | %.2f× | %s | %s | %d | %s | %s |", i+1, single, x.RPS(), x.RPS()/single,
			ms(x.Q(.5)), ms(x.Q(.99)), x.Errors+c.Ceiling.Errors, ceil, ratio)
	}
	b.p("")
	var cl, one []float64
	for i, c := range r.Cluster {
		if x := c.Refresh; x.CPU != nil && x.N > 0 {
			cl = append(cl, float64(x.CPU["issuer"])/float64(x.N)/1e3)
		}
		if i < len(r.Issuer) {
			if x := r.Issuer[i].Refresh; x.CPU != nil && x.N > 0 {
				one = append(one, float64(x.CPU["issuer"])/float64(x.N)/1e3)
			}
		}
	}
	if len(cl) > 0 && len(one) > 0 {
		b.p("The issuer's CPU per refresh (median over runs): %.0f µs on the cluster, %.0f µs on one Redis; the cluster client's pipeline of the first round trip goes to two masters at once.", medianF(cl), medianF(one))
		b.p("")
	}
}

// writeDistinct is section 10: distinct live tokens in rotation.
func (r *Report) writeDistinct(b *md) {
	d := r.Distinct
	if d == nil {
		return
	}
	b.p("## 11. Distinct tokens: the verifier's auth-check with N live tokens in rotation")
	b.p("")
	how := fmt.Sprintf("signed in this run in %s", d.MintTime.Round(time.Second))
	if d.Reused {
		how = "kept from an earlier run (the bench keeps them in its cache directory while they have an hour left)"
	}
	b.p("Every request carries the next of N distinct access tokens (distinct users, sessions and ids), in rotation, with the forward-auth headers of section 4; the bare handler gets the same requests. The tokens are signed with an ES256 key of the bench's own and shaped as the issuer's (its claims, `typ` at+jwt); the verifier trusts that key (`JOTGUARD_ISSUER` their iss, `JOTGUARD_JWKS_URL` the bench's JWKS) and accepts their %.0f-hour lifetime (`JOTGUARD_ACCESS_TTL`). The %d tokens were %s. bin/verifier otherwise runs with its defaults (a verified-token cache of %d tokens) and the dev stack's revocation feed. wrk formats each token's request once, in its Lua init (one thread; a million requests take about 1.3 GB of LuaJIT memory), then sends them in turn. c=%d, %s a run, median (min–max) over %d run(s), the bare handler and the verifier interleaved; each N is measured after a run over its own tokens, not measured, that fills the cache as far as it holds them.", d.Lifetime.Hours(), d.Counts[len(d.Counts)-1], how, d.CacheSize, d.Conc, r.httpRunTime(), r.Cfg.Runs)
	b.p("")
	b.p("\"server CPU\" is the CPU time of the server's process per request, median over runs (from /proc, 10 ms ticks): what each token count costs it.")
	b.p("")
	b.p("| tokens | target | req/s | × bare | p50 | p99 | server CPU | errors |\n|---|---|---|---|---|---|---|---|")
	for _, n := range d.Counts {
		bare := d.fig(tDistinctBare, n)
		for _, t := range d.Order {
			f := d.fig(t, n)
			if !f.OK {
				continue
			}
			cpu := "—"
			if us := d.cpuPerRequest(t, n); us > 0 {
				cpu = fmt.Sprintf("%.1f µs", us)
			}
			b.p("| %d | %s | %.0f (%.0f–%.0f) | %.2f | %s | %s | %s | %d |", n, t, f.RPS, f.Lo, f.Hi, f.RPS/bare.RPS, ms(f.P50), ms(f.P99), cpu, f.Errors)
		}
	}
	b.p("")
	last := d.Counts[len(d.Counts)-1]
	if v, one, nc := d.fig(tDistinctVerifier, last), r.httpFig(tForward, d.Conc), r.httpFig(tNoCache, d.Conc); v.OK && one.OK && nc.OK && last > d.CacheSize {
		b.p("With %d tokens the cache (%d) cannot hold them: nearly every request parses its token and checks its ES256 signature, as with the cache off. That costs %.0f%% of the one-token rate of section 4 (%.0f req/s there, %.0f here); the cache-off verifier of section 4 did %.0f req/s with one token.", last, d.CacheSize, 100*(1-v.RPS/one.RPS), one.RPS, v.RPS, nc.RPS)
		b.p("")
	}
}

// cpuPerRequest is the median over runs of target's server CPU per
// request with n tokens, in µs; 0 when not measured.
func (d *Distinct) cpuPerRequest(target string, n int) float64 {
	var v []float64
	for _, r := range d.HTTP[target][n] {
		if c, ok := r.CPU["server"]; ok && r.N > 0 {
			v = append(v, float64(c)/float64(r.N)/1e3)
		}
	}
	return medianF(v)
}

// writePeers is section 11: other projects' auth servers, measured in the
// runs of section 4, and the logout column.
func (r *Report) writePeers(b *md) {
	if r.Peers == nil {
		return
	}
	b.p("## 13. Peers: oauth2-proxy and Ory Oathkeeper")
	b.p("")
	b.p("Built in this run from the Go module proxy into `%s` (a binary already there is reused), started pinned like the verifier, each verifying the issuer's access tokens by its JWKS, and measured in the interleaved runs of section 4 with the verifier's request (the token and the X-Forwarded-* headers):", filepath.Join(r.Cfg.Cache, "peers"))
	b.p("")
	for _, p := range r.Peers {
		switch {
		case p.Err != "":
			b.p("- **%s** (%s): could not be built: %s. %s.", p.Name, p.Module, p.Err, p.Note)
		case p.Took > 0:
			b.p("- **%s** %s (%s), built in %s: %s.", p.Name, p.Version, p.Module, p.Took.Round(time.Second), p.Note)
		default:
			b.p("- **%s** %s (%s), from the cache: %s.", p.Name, p.Version, p.Module, p.Note)
		}
	}
	b.p("- oauth2-proxy answers nginx's `auth_request` at `/oauth2/auth` (202 or 401): `--provider=oidc --oidc-issuer-url=ISSUER` (OIDC discovery, then the JWKS), `--skip-jwt-bearer-tokens --extra-jwt-issuers=ISSUER=jotguard` (a Bearer token the issuer signed for the audience is a session), `--insecure-oidc-allow-unverified-email` (the bench's users have not verified their email), logging off.")
	b.p("- Oathkeeper answers its decision API, `/decisions/app` (200 or 401): one access rule for every GET of app.example, the `jwt` authenticator with `jwks_urls` (the issuer's JWKS), `trusted_issuers`, `target_audience: [jotguard]` and ES256, the `allow` authorizer and the `noop` mutator, log level error.")
	b.p("")
	peers := []string{tOAuth2Proxy, tOathkeeper}
	b.p("| target | c | req/s | × oauth2-proxy | p50 | p99 | logout → rejected? |\n|---|---|---|---|---|---|---|")
	for _, t := range append([]string{tForward, tNoCache}, peers...) {
		for _, c := range r.Concs {
			f, o := r.httpFig(t, c), r.httpFig(tOAuth2Proxy, c)
			if !f.OK {
				continue
			}
			x := "—"
			if o.OK {
				x = fmt.Sprintf("%.2f×", f.RPS/o.RPS)
			}
			b.p("| %s | %d | %.0f (%.0f–%.0f) | %s | %s | %s | %s |", t, c, f.RPS, f.Lo, f.Hi, x, ms(f.P50), ms(f.P99), r.logoutCell(t))
		}
	}
	b.p("")
	if lc := r.Logout; lc != nil {
		if lc.Err != "" {
			b.p("The logout check failed: %s.", lc.Err)
		} else {
			b.p("\"logout → rejected?\": a fresh session's access token was first sent to every target (answers: %s); the session was then logged out at the issuer (`POST /logout`), and once the verifier answered 401 (its revocation feed) the same token was sent to each target again; the cell is that answer. A peer that only checks the signature and the expiry allows the token until it expires.", r.statusList(lc.Before))
		}
		b.p("")
	}
}

// logoutCell is target's "logout → rejected?" cell.
func (r *Report) logoutCell(t string) string {
	lc := r.Logout
	if lc == nil || lc.Err != "" {
		return "—"
	}
	st, ok := lc.After[t]
	switch {
	case !ok:
		return "—"
	case st == 401 || st == 403:
		return fmt.Sprintf("yes (%d)", st)
	case st >= 200 && st < 300:
		return fmt.Sprintf("**no** (%d)", st)
	}
	return fmt.Sprintf("? (%d)", st)
}

// statusList is "target status, …" in report order.
func (r *Report) statusList(m map[string]int) string {
	var out []string
	for _, t := range r.HTTPOrder {
		if st, ok := m[t]; ok {
			out = append(out, fmt.Sprintf("%s %d", t, st))
		}
	}
	return strings.Join(out, ", ")
}
