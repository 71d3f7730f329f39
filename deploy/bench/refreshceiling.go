package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// The /access_token ceiling is the issuer's own code: the benchmark
// BenchmarkSignRotateCeiling beside redisstore.Sessions (an internal
// package of the issuer module, which the bench cannot import) rotates each
// worker's session chain with the real Sessions.Rotate and signs an ES256
// access token, with no HTTP. The bench runs it with `go test` in the
// issuer module, on the issuer's Redis, and reads its ns/op.
const (
	ceilingPkg   = "./internal/redisstore"
	ceilingBench = "BenchmarkSignRotateCeiling"
)

// ceilingProc names the ceiling's process in a Result's CPU.
const ceilingProc = "ceiling (go test)"

// ceilingArgs is the `go test` command line of the ceiling, run for d.
func ceilingArgs(d time.Duration) []string {
	return []string{"test", "-run=^$", "-bench=^" + ceilingBench + "$", "-benchtime=" + d.String(),
		"-count=1", "-vet=off", ceilingPkg}
}

// ceilingCommand is the ceiling's command as the report shows it.
func ceilingCommand(conc int, d time.Duration) string {
	return fmt.Sprintf("cd issuer && JOTGUARD_BENCH_CONCURRENCY=%d JOTGUARD_REDIS_URL=… go %s", conc, strings.Join(ceilingArgs(d), " "))
}

// refreshCeiling runs the ceiling with conc workers for d against the Redis
// at redisURL, from the issuer module under root, as a Result named name:
// N operations in N × ns/op.
func refreshCeiling(ctx context.Context, root, name, redisURL string, conc int, d time.Duration) (Result, error) {
	out, err := goTest(ctx, filepath.Join(root, "issuer"),
		[]string{"JOTGUARD_REDIS_URL=" + redisURL, fmt.Sprint("JOTGUARD_BENCH_CONCURRENCY=", conc)}, ceilingArgs(d)...)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w: %s", ceilingBench, err, out)
	}
	for _, l := range parseBench(out) {
		ns, ok := l.Metrics["ns/op"]
		if l.Name != fmt.Sprintf("%s/c=%d", ceilingBench, conc) || !ok {
			continue
		}
		r := Result{Name: name, Conc: conc, N: l.N, Errors: int(l.Metrics["errors"]),
			Elapsed: time.Duration(ns * float64(l.N))}
		if cpu, ok := l.Metrics["cpu-ns/op"]; ok {
			r.CPU = map[string]time.Duration{ceilingProc: time.Duration(cpu * float64(l.N))}
			if rc, ok := l.Metrics["redis-cpu-ns/op"]; ok {
				r.CPU["redis-server"] = time.Duration(rc * float64(l.N))
			}
		}
		if r.Errors > 0 { // the benchmark logs "… refreshes failed, first: …"
			for ln := range strings.Lines(string(out)) {
				if strings.Contains(ln, "failed, first:") {
					r.FirstErr = strings.TrimSpace(ln)
				}
			}
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("%s: no c=%d result in %q", ceilingBench, conc, out)
}
