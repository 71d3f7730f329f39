package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"
)

// ClusterResults is one run of the Redis Cluster scenario: the /access_token
// workload against an issuer whose sessions live in a Redis Cluster of three
// masters, and the sign+rotate ceiling on that cluster.
type ClusterResults struct {
	Refresh, Ceiling Result
}

// clusterScenario runs, for run r, the /access_token workload of that run
// (same users, same count) against a second issuer on the same database
// whose Redis is a Cluster of three masters from the dev stack
// (`devstack --only redis --redis-cluster`, started at the first run), and
// the ceiling on the cluster. The cluster's issuer is stopped afterwards, so
// that it takes no CPU from what follows.
func (b *bench) clusterScenario(ctx context.Context, st *stack, r int, users []int) error {
	if b.cluster == nil {
		b.log.Printf("Redis Cluster: 3 masters from the dev stack")
		ds, err := b.procs.StartDevstackNamed(ctx, "devstack-cluster", filepath.Join(b.cfg.Root, "bin", "devstack"), "",
			[]string{"JOTGUARD_REDIS_URL"}, "--only", "redis", "--redis-cluster")
		if err != nil {
			return fmt.Errorf("start a Redis Cluster: %w", err)
		}
		b.cluster = ds
		b.rep.ClusterURL = ds.Env["JOTGUARD_REDIS_URL"]
	}
	url := b.cluster.Env["JOTGUARD_REDIS_URL"]
	env := maps.Clone(st.ds.Env)
	env["JOTGUARD_REDIS_URL"] = url
	db := fmt.Sprintf("bench%s%d", b.tag, r)
	p, ic, err := b.servers.IssuerNamed(ctx, "issuer-cluster", &Devstack{Env: env}, "", db, b.tag)
	if err != nil {
		return fmt.Errorf("issuer on the Redis Cluster: %w", err)
	}
	defer p.Stop()
	conc := issuerConc
	if b.cfg.Quick { // a smoke run: fewer sessions to log in, no ceiling
		conc = 8
	}
	w := issuerWorkload{c: ic, watch: CPUWatch{"issuer": p.Cmd.Process.Pid, "bench (load)": os.Getpid()}, run: r, conc: conc}
	res, err := w.refresh(ctx, b.plan.n, users)
	if err != nil {
		return fmt.Errorf("/access_token on the Redis Cluster: %w", err)
	}
	p.Stop()
	var ce Result
	if !b.cfg.Quick {
		if ce, err = refreshCeiling(ctx, b.cfg.Root, "sign+rotate (cluster)", url, issuerConc, b.plan.d); err != nil {
			return fmt.Errorf("ceiling on the Redis Cluster: %w", err)
		}
	}
	b.log.Printf("  Redis Cluster: /access_token %7.0f req/s p99 %s errors %d %s; ceiling %7.0f ops/s (0: not run)",
		res.RPS(), res.Q(.99).Round(time.Millisecond/10), res.Errors, res.FirstErr, ce.RPS())
	b.rep.Cluster = append(b.rep.Cluster, ClusterResults{Refresh: res, Ceiling: ce})
	return nil
}
