package main

import (
	"context"
	"fmt"
	"time"
)

// Target is one server under HTTP load in scenarios 4 and 8.
type Target struct {
	Name string
	URL  string
	Hdrs []string
}

// startTargets starts the servers of scenarios 4 and 8, pinned to the
// server CPUs, and answers them in report order (the report keeps that
// order). A verifier or session server that does not start is a note, and
// its rows are missing.
func (b *bench) startTargets(ctx context.Context, st *stack) ([]Target, error) {
	sess, err := st.ic.Login(ctx, func() string {
		e := st.ic.Email(999, 0)
		_ = st.ic.Register(ctx, e)
		return e
	}())
	if err != nil {
		return nil, fmt.Errorf("token for the verifier runs: %w", err)
	}
	bearer := "Authorization: Bearer " + sess.Access
	fwd := []string{bearer, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /app", "X-Forwarded-Host: app.example"}
	cpus := b.cfg.ServerCPUs
	bare, err := b.servers.Own(ctx, "bare", cpus, "bare")
	if err != nil {
		return nil, err
	}
	targets := []Target{{tBare, "http://" + bare.Addr + "/app", nil},
		// the same request the verifier gets (token, X-Forwarded-*): what
		// HTTP parsing alone costs, apart from the decision
		{tBareHdr, "http://" + bare.Addr + "/app", fwd}}
	targets = append(targets, b.startVerifierTargets(ctx, st, "http://"+bare.Addr, bearer, fwd)...)
	targets = append(targets, b.startPeers(ctx, st.ic.Base, fwd)...)
	jwtOn, err := b.servers.Own(ctx, "jwt-cache", cpus, "jwt", "--issuer", st.ic.Base)
	if err != nil {
		return nil, err
	}
	targets = append(targets, Target{tJWT, "http://" + jwtOn.Addr + "/app", []string{bearer}})
	redisURL := st.ds.Env["JOTGUARD_REDIS_URL"]
	if ids, err := sessionServerSetup(ctx, redisURL, b.tag, 1); err != nil {
		b.note("Redis session server: %v", err)
	} else if srv, err := b.servers.Own(ctx, "session", cpus, "session", "--redis", redisURL); err != nil {
		b.note("Redis session server: %v", err)
	} else {
		targets = append(targets, Target{tSession, "http://" + srv.Addr + "/app", []string{"Cookie: sid=" + ids[0]}})
	}
	for _, t := range targets {
		b.rep.HTTPOrder = append(b.rep.HTTPOrder, t.Name)
	}
	return targets, nil
}

// startVerifierTargets starts bin/verifier as forward-auth (verifier-1,
// kept in st for scenario 6), with its cache off, and as a reverse proxy to
// upstream.
func (b *bench) startVerifierTargets(ctx context.Context, st *stack, upstream, bearer string, fwd []string) []Target {
	cpus, env := b.cfg.ServerCPUs, st.ds.Env
	v, err := b.servers.Verifier(ctx, "verifier-1", cpus, env, st.ic.Base, "")
	if err != nil {
		b.note("bin/verifier did not start (%v): verifier rows are missing; sdk.Middleware rows stand in for its engine", err)
		return nil
	}
	st.verifier, b.rep.VerifierOK = v, true
	targets := []Target{{tForward, "http://" + v.Addr + "/authz/forward-auth", fwd}}
	if vnc, err := b.servers.Verifier(ctx, "verifier-nocache", cpus, env, st.ic.Base, "", "JOTGUARD_VERIFY_CACHE_SIZE=0"); err != nil {
		b.note("bin/verifier with the cache off did not start: %v", err)
	} else {
		targets = append(targets, Target{tNoCache, "http://" + vnc.Addr + "/authz/forward-auth", fwd})
	}
	if vproxy, err := b.servers.Verifier(ctx, "verifier-proxy", cpus, env, st.ic.Base, upstream); err != nil {
		b.note("bin/verifier in reverse-proxy mode did not start: %v", err)
	} else {
		targets = append(targets, Target{tProxy, "http://" + vproxy.Addr + "/app", []string{bearer}})
	}
	return targets
}

// runTargets measures each target at each concurrency, runs times,
// interleaved (target order rotates per run) so drift hits all alike.
func runTargets(log *logger, load *httpLoader, targets []Target, concs []int, runs int, d time.Duration) map[string]map[int][]Result {
	out := map[string]map[int][]Result{}
	for run := range runs {
		for _, c := range concs {
			for k := range targets {
				t := targets[(k+run)%len(targets)]
				r, err := load.Run(t.Name, t.URL, c, d, t.Hdrs...)
				if err != nil {
					log.Printf("  %s c=%d: %v", t.Name, c, err)
					continue
				}
				if out[t.Name] == nil {
					out[t.Name] = map[int][]Result{}
				}
				out[t.Name][c] = append(out[t.Name][c], r)
				log.Printf("  run %d %-28s c=%-3d %9.0f req/s p50 %-9s p99 %-9s errors %d %s", run+1, t.Name, c, r.RPS(),
					r.Q(0.5).Round(time.Microsecond), r.Q(0.99).Round(time.Microsecond), r.Errors, r.FirstErr)
			}
		}
	}
	return out
}
