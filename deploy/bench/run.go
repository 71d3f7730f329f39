package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

func run(ctx context.Context) (*Report, error) {
	rep := &Report{Cfg: cfg, Started: time.Now().UTC(), Machine: describeMachine(), LoadGen: "go"}
	if wrkPath != "" {
		rep.LoadGen = "wrk"
	}
	defer func() { rep.Duration = time.Since(rep.Started) }()
	n, refreshUsers, d := 1000, 10, 2*time.Second
	rep.Concs = []int{1, 16, 64}
	propN := 200
	memSteps := []int{100_000, 1_000_000}
	if cfg.Quick {
		n, d, propN = 40, 400*time.Millisecond, 20
		rep.Concs = []int{1, 64} // wrk runs whole seconds
		memSteps = []int{10_000}
	}
	rep.N, rep.RefreshUsers, rep.PropN = n, refreshUsers, propN
	rep.CeilingCommand = ceilingCommand(64, d)

	if cfg.Profile {
		profDir = filepath.Join(logDir, "profiles")
		_ = os.MkdirAll(profDir, 0o755)
		logf("building issuer and verifier with pprof into %s", profDir)
		if err := buildProfiled(profDir); err != nil {
			return rep, err
		}
		issuerPprof = freeAddr()
		verifierPprof["verifier-1"] = freeAddr()
		verifierPprof["verifier-proxy"] = freeAddr()
	}
	logf("dev stack")
	// Not pinned either: MongoDB and Redis serve the issuer workloads, which
	// had the whole machine in the Authix baseline.
	ds, err := startDevstack(ctx, "")
	if err != nil {
		return rep, err
	}
	if cfg.MongoURI != "" { // a real MongoDB instead of the dev stack's FerretDB
		ds.Env["JOTGUARD_MONGO_URI"] = cfg.MongoURI
		rep.note("MongoDB: %s, not the dev stack's FerretDB", redactURI(cfg.MongoURI))
	}
	// The issuer is not pinned: the Authix baseline had the whole machine,
	// and argon2id wants every core.
	// Each run gets a fresh issuer on an empty database (as the Authix
	// baseline had): the dev stack's FerretDB finds a user by _id in time
	// that grows with the collection, so runs on one database drift.
	var iproc *Proc
	var ic *IssuerClient
	newIssuer := func(r int) error {
		iproc.Stop()
		var err error
		iproc, ic, err = startIssuer(ctx, ds, "", fmt.Sprintf("bench%s%d", runTag, r))
		if err == nil {
			logf("issuer at %s (database bench%s%d)", ic.Base, runTag, r)
		}
		return err
	}
	if err := newIssuer(0); err != nil {
		return rep, err
	}

	// 1–3: Authix workloads, and the ceilings measured between them.
	if !cfg.Skip["1"] {
		for r := range cfg.Runs {
			if r > 0 {
				if err := newIssuer(r); err != nil {
					return rep, err
				}
			}
			logf("run %d: Authix workloads (n=%d, c=64)", r+1, n)
			res, err := authixWorkloads(ctx, ic, watchIssuer(iproc, ds), r, 64, n, refreshUsers)
			if err != nil {
				return rep, err
			}
			for _, x := range []Result{res.Register, res.Login, res.RegisterLogin, res.Refresh} {
				logf("  %-16s %6d in %8s  %7.0f req/s  p50 %-8s p99 %-8s errors %d %s", x.Name, x.N,
					x.Elapsed.Round(time.Millisecond), x.RPS(), x.Q(.5).Round(time.Millisecond/10),
					x.Q(.99).Round(time.Millisecond/10), x.Errors, x.FirstErr)
			}
			rep.Issuer = append(rep.Issuer, res)
			ce, err := refreshCeiling(ctx, cfg.Root, "sign+rotate", ds.Env["JOTGUARD_REDIS_URL"], 64, d)
			if err != nil {
				return rep, err
			}
			logf("  sign+rotate ceiling %7.0f ops/s (errors %d)", ce.RPS(), ce.Errors)
			rep.Ceiling = append(rep.Ceiling, ce)
			ac, err := argon2Ceiling(19456, 2, 1, map[bool]int{true: 4, false: 15}[cfg.Quick])
			if err != nil {
				return rep, err
			}
			logf("  argon2id %s/hash → ceiling %.1f/s (%d cores); measured parallel %.1f/s", ac.HashTime.Round(time.Microsecond), ac.PerSec, ac.Cores, ac.Parallel)
			rep.Argon = append(rep.Argon, ac)
		}
	}

	// 4 and 8: HTTP servers, pinned, load pinned elsewhere.
	sess, err := ic.Login(ctx, func() string {
		e := email(999, 0)
		_ = ic.Register(ctx, e)
		return e
	}())
	if err != nil {
		return rep, fmt.Errorf("token for the verifier runs: %w", err)
	}
	bearer := "Authorization: Bearer " + sess.Access
	fwd := []string{bearer, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /app", "X-Forwarded-Host: app.example"}
	bare, err := startOwn(ctx, "bare", cfg.ServerCPUs, "bare")
	if err != nil {
		return rep, err
	}
	var targets []Target
	targets = append(targets, Target{tBare, "http://" + bare.Addr + "/app", nil},
		// the same request the verifier gets (token, X-Forwarded-*): what
		// HTTP parsing alone costs, apart from the decision
		Target{tBareHdr, "http://" + bare.Addr + "/app", fwd})
	vcheck, err := startVerifier(ctx, "verifier-1", cfg.ServerCPUs, ds.Env, ic.Base, "")
	if err != nil {
		rep.note("bin/verifier did not start (%v): verifier rows are missing; sdk.Middleware rows stand in for its engine", err)
	} else {
		rep.VerifierOK = true
		targets = append(targets, Target{tForward, "http://" + vcheck.Addr + "/authz/forward-auth", fwd})
		if vnc, err := startVerifier(ctx, "verifier-nocache", cfg.ServerCPUs, ds.Env, ic.Base, "", "JOTGUARD_VERIFY_CACHE_SIZE=0"); err != nil {
			rep.note("bin/verifier with the cache off did not start: %v", err)
		} else {
			targets = append(targets, Target{tNoCache, "http://" + vnc.Addr + "/authz/forward-auth", fwd})
		}
		vproxy, err := startVerifier(ctx, "verifier-proxy", cfg.ServerCPUs, ds.Env, ic.Base, "http://"+bare.Addr)
		if err != nil {
			rep.note("bin/verifier in reverse-proxy mode did not start: %v", err)
		} else {
			targets = append(targets, Target{tProxy, "http://" + vproxy.Addr + "/app", []string{bearer}})
		}
	}
	jwtOn, err := startOwn(ctx, "jwt-cache", cfg.ServerCPUs, "jwt", "--issuer", ic.Base)
	if err != nil {
		return rep, err
	}
	targets = append(targets, Target{tJWT, "http://" + jwtOn.Addr + "/app", []string{bearer}})
	if ids, err := sessionServerSetup(ctx, ds.Env["JOTGUARD_REDIS_URL"], 1); err != nil {
		rep.note("Redis session server: %v", err)
	} else if srv, err := startOwn(ctx, "session", cfg.ServerCPUs, "session", "--redis", ds.Env["JOTGUARD_REDIS_URL"]); err != nil {
		rep.note("Redis session server: %v", err)
	} else {
		targets = append(targets, Target{tSession, "http://" + srv.Addr + "/app", []string{"Cookie: sid=" + ids[0]}})
	}
	for _, t := range targets {
		rep.HTTPOrder = append(rep.HTTPOrder, t.Name)
	}
	if !cfg.Skip["4"] {
		logf("verifier and session servers: c=%v, %s each, %d runs (servers on CPUs %q, load on %q)", rep.Concs, d, cfg.Runs, cfg.ServerCPUs, cfg.LoadCPUs)
		rep.HTTP = runTargets(targets, rep.Concs, cfg.Runs, d)
	}

	if cfg.Profile {
		profiles(ctx, rep, ic, targets, d)
	}

	// 6: revocation propagation to two verifiers.
	if !cfg.Skip["6"] {
		vs := map[string]string{}
		if rep.VerifierOK {
			v2, err := startVerifier(ctx, "verifier-2", cfg.ServerCPUs, ds.Env, ic.Base, "")
			if err != nil {
				return rep, err
			}
			vs["verifier-1"] = "http://" + vcheck.Addr + "/authz/forward-auth"
			vs["verifier-2"] = "http://" + v2.Addr + "/authz/forward-auth"
		} else {
			for i := 1; i <= 2; i++ {
				p, err := startOwn(ctx, fmt.Sprint("sdkfeed-", i), cfg.ServerCPUs, "jwt", "--issuer", ic.Base,
					"--kafka", ds.Env["JOTGUARD_KAFKA_BROKERS"], "--topic", ds.Env["JOTGUARD_REVOCATION_TOPIC"])
				if err != nil {
					return rep, err
				}
				vs[fmt.Sprint("sdk kafkafeed ", i)] = "http://" + p.Addr + "/app"
			}
			time.Sleep(2 * time.Second) // partitions assigned, replay done
		}
		logf("revocation propagation: %d logouts, verifiers %v", propN, vs)
		p, err := propagation(ctx, ic, vs, 500, propN)
		if err != nil {
			rep.note("propagation: %v", err)
		}
		rep.Prop = &p
	}

	// 7: verifier memory.
	if !cfg.Skip["7"] {
		m := &Memory{}
		for _, k := range memSteps {
			sm := setMemory(k)
			logf("revocation.Set in-process: %d entries, %.1f B/entry", sm.Entries, sm.PerEntry())
			m.InProc = append(m.InProc, sm)
		}
		if rep.VerifierOK {
			if err := verifierMemory(ctx, rep, ds, m, memSteps, d); err != nil {
				rep.note("verifier memory: %v", err)
			}
		}
		rep.Mem = m
	}
	stopAll()

	// 5: the sdk's Go benchmarks, with the servers stopped.
	if !cfg.Skip["5"] {
		gb, err := runGoBench(ctx)
		if err != nil {
			rep.note("sdk Go benchmarks: %v", err)
		}
		rep.GoBench = gb
	}
	return rep, nil
}

func verifierMemory(ctx context.Context, rep *Report, ds *Devstack, m *Memory, steps []int, d time.Duration) error {
	// Other verifiers would spend CPU rejecting these events: stop them.
	for _, p := range procs {
		if strings.HasPrefix(p.Name, "verifier") {
			p.Stop()
		}
	}
	iss, err := sdktest.StartIssuer()
	if err != nil {
		return err
	}
	defer iss.Close()
	v, err := startVerifier(ctx, "verifier-mem", cfg.ServerCPUs, ds.Env, iss.URL, "")
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	m.Idle = v.RSS()
	logf("verifier RSS idle %.1f MiB", float64(m.Idle)/(1<<20))
	tok := iss.Mint(nil, iss.Claims("mem-user"))
	var peak int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				peak = max(peak, v.RSS())
			}
		}
	})
	m.LoadResult, err = loadHTTP("verifier under load", "http://"+v.Addr+"/authz/forward-auth", 64, d,
		"Authorization: Bearer "+tok, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /", "X-Forwarded-Host: app.example")
	close(done)
	wg.Wait()
	if err != nil {
		return err
	}
	m.Loaded = peak
	logf("verifier RSS under load (c=64) %.1f MiB", float64(m.Loaded)/(1<<20))
	metrics := "http://" + v.Addr + "/metrics"
	time.Sleep(time.Second)
	m.Before = v.RSS()
	have := 0
	for _, k := range steps {
		if k >= 1_000_000 && time.Since(start0) > 6*time.Minute && !cfg.FullMemory {
			rep.note("verifier memory: the %d-entry step was skipped to keep make bench under 10 minutes (%s elapsed); the in-process revocation.Set figure covers it; run it alone with `bin/bench --skip 1,4,5,6 --full-memory`", k, time.Since(start0).Round(time.Second))
			break
		}
		t0 := time.Now()
		if err := inject(ctx, iss, ds.Env["JOTGUARD_KAFKA_BROKERS"], ds.Env["JOTGUARD_REVOCATION_TOPIC"], have, k-have); err != nil {
			return err
		}
		have = k
		got := -1.0
		for time.Since(t0) < 5*time.Minute {
			if got = metric(metrics, "jotguard_verifier_revocation_set_size"); got >= float64(k) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(time.Second)
		rss := v.RSS()
		m.Entries, m.RSS, m.SetSize = append(m.Entries, k), append(m.RSS, rss), append(m.SetSize, int(got))
		logf("verifier with %d entries injected (set size %v): RSS %.1f MiB, in %s", k, got, float64(rss)/(1<<20), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// profiles takes CPU profiles of the issuer under /access_token load and of
// the verifier under forward-auth and proxy load (c=64).
func profiles(ctx context.Context, rep *Report, ic *IssuerClient, targets []Target, d time.Duration) {
	secs := max(2, int(d.Seconds()))
	d = time.Duration(secs)*time.Second + time.Second
	sess := make([]Session, 64)
	e := email(998, 0)
	_ = ic.Register(ctx, e)
	for w := range sess {
		s, err := ic.Login(ctx, e)
		if err != nil {
			rep.note("profile: login: %v", err)
			return
		}
		sess[w] = s
	}
	p, err := cpuProfile(ctx, "issuer-access-token", issuerPprof, secs, func() {
		r := Load(ctx, "access_token (profiled)", 64, 0, d, 0, func(ctx context.Context, w, i int) error {
			s, err := ic.Refresh(ctx, sess[w].Refresh)
			if err == nil {
				sess[w] = s
			}
			return err
		})
		logf("  profiled /access_token: %.0f req/s, errors %d", r.RPS(), r.Errors)
	})
	if err != nil {
		rep.note("profile issuer: %v", err)
	} else {
		rep.Profiles = append(rep.Profiles, p)
	}
	p, err = cpuProfile(ctx, "issuer-login", issuerPprof, secs, func() {
		r := Load(ctx, "login (profiled)", 64, 0, d, 0, func(ctx context.Context, w, i int) error {
			_, err := ic.Login(ctx, e)
			return err
		})
		logf("  profiled /login: %.0f req/s, errors %d", r.RPS(), r.Errors)
	})
	if err != nil {
		rep.note("profile issuer: %v", err)
	} else {
		p.Load = "/login at c=64"
		rep.Profiles = append(rep.Profiles, p)
	}
	for _, t := range targets {
		name := map[string]string{tForward: "verifier-1", tProxy: "verifier-proxy"}[t.Name]
		if name == "" {
			continue
		}
		p, err := cpuProfile(ctx, name, verifierPprof[name], secs, func() {
			r, err := loadHTTP(t.Name+" (profiled)", t.URL, 64, d, t.Hdrs...)
			if err == nil {
				logf("  profiled %s: %.0f req/s", t.Name, r.RPS())
			}
		})
		if err != nil {
			rep.note("profile %s: %v", name, err)
		} else {
			p.Load = t.Name + " at c=64"
			rep.Profiles = append(rep.Profiles, p)
		}
	}
	rep.Profiles[0].Load = "/access_token at c=64"
}

// redactURI drops a password from a connection string for the report.
func redactURI(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URI)"
}
