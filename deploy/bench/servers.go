package main

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// benchRateLimits is JOTGUARD_RATE_LIMITS for the bench's issuers: every
// class on, as in production, so that every request makes the Redis calls
// its limits cost, with budgets the load, which comes from one address,
// never spends (10⁹ a minute).
const benchRateLimits = "credentials=1000000000/1m,refresh=1000000000/1m,account=1000000000/1m," +
	"account-network=1000000000/1m,revoke=1000000000/1m,mail=1000000000/1m"

// accessTTL is longer than the default so that a token minted before the
// verifier runs outlives them.
const accessTTL = "15m"

// Servers starts the processes under test: bin/issuer and bin/verifier
// (or their pprof builds, --profile) and the bench's own servers.
type Servers struct {
	procs       *Procs
	issuerBin   string
	verifierBin string
	self        string            // this executable: `bench serve`
	pprof       map[string]string // process name → its pprof address (--profile)
}

// newServers starts processes through procs from the binaries in binDir.
func newServers(procs *Procs, binDir string) (*Servers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Servers{procs: procs, self: self, pprof: map[string]string{},
		issuerBin: filepath.Join(binDir, "issuer"), verifierBin: filepath.Join(binDir, "verifier")}, nil
}

// Issuer runs the issuer against the dev stack with database (and Redis
// prefix) db; its client makes emails with tag.
func (s *Servers) Issuer(ctx context.Context, ds *Devstack, cpus, db, tag string) (*Proc, *IssuerClient, error) {
	return s.IssuerNamed(ctx, "issuer", ds, cpus, db, tag)
}

// IssuerNamed is Issuer under another process name (its log file, its
// pprof address); the settings in ds.Env are its backends.
func (s *Servers) IssuerNamed(ctx context.Context, name string, ds *Devstack, cpus, db, tag string) (*Proc, *IssuerClient, error) {
	addr := freeAddr()
	p, err := s.procs.Start(name, cpus, envList(ds.Env,
		"JOTGUARD_ISSUER_ADDR="+addr,
		"JOTGUARD_ISSUER=http://"+addr,
		"JOTGUARD_MONGO_DB="+db,
		"JOTGUARD_REDIS_PREFIX="+db,
		"JOTGUARD_COOKIE_SECURE=false",
		"JOTGUARD_RATE_LIMITS="+benchRateLimits,
		"JOTGUARD_DRAIN_DELAY=0s",
		"JOTGUARD_LOG_LEVEL=warn",
		"JOTGUARD_ACCESS_TTL="+accessTTL,
		"BENCH_PPROF_ADDR="+s.pprof[name],
	), s.issuerBin)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.ready(ctx, p, addr, 60*time.Second); err != nil {
		return nil, nil, err
	}
	return p, &IssuerClient{Base: "http://" + addr, HTTP: NewClient(128), Tag: tag}, nil
}

// Verifier runs the verifier pinned to cpus; upstream set
// selects reverse-proxy mode; extra are more VAR=value settings.
func (s *Servers) Verifier(ctx context.Context, name, cpus string, env map[string]string, issuer, upstream string, extra ...string) (*Proc, error) {
	addr := freeAddr()
	e := envList(nil, append([]string{
		"JOTGUARD_VERIFIER_ADDR=" + addr,
		"JOTGUARD_ISSUER=" + issuer,
		"JOTGUARD_LOG_LEVEL=warn",
		"JOTGUARD_ACCESS_TTL=" + accessTTL,
		"JOTGUARD_DRAIN_DELAY=0s", // stopping it between scenarios need not wait for a load balancer
	}, extra...)...)
	for _, k := range []string{"JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		if v := env[k]; v != "" {
			e = append(e, k+"="+v)
		}
	}
	readyAddr := addr
	if upstream != "" {
		// In proxy mode every path of the main port is the upstream's: the
		// operational endpoints are on the admin listener only.
		readyAddr = freeAddr()
		e = append(e, "JOTGUARD_UPSTREAM="+upstream, "JOTGUARD_ADMIN_ADDR="+readyAddr)
	}
	if pp := s.pprof[name]; pp != "" {
		e = append(e, "BENCH_PPROF_ADDR="+pp)
	}
	p, err := s.procs.Start(name, cpus, e, s.verifierBin)
	if err != nil {
		return nil, err
	}
	if _, err := s.ready(ctx, p, readyAddr, 60*time.Second); err != nil {
		return nil, err
	}
	p.Addr = addr
	return p, nil
}

// Own runs one of the bench's own servers (serveMain) pinned to cpus.
func (s *Servers) Own(ctx context.Context, name, cpus string, args ...string) (*Proc, error) {
	addr := freeAddr()
	p, err := s.procs.Start(name, cpus, nil, append([]string{s.self, "serve"}, append(args, "--addr", addr)...)...)
	if err != nil {
		return nil, err
	}
	return s.ready(ctx, p, addr, 30*time.Second)
}

// ready waits until p serves /readyz on addr, and answers p.
func (s *Servers) ready(ctx context.Context, p *Proc, addr string, timeout time.Duration) (*Proc, error) {
	p.Addr = addr
	if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", timeout); err != nil {
		return nil, err
	}
	return p, nil
}

// profiled makes the issuer and verifiers started from now on the pprof
// builds in dir (buildProfiled); those named serve pprof on a free address.
func (s *Servers) profiled(dir string, names ...string) {
	s.issuerBin, s.verifierBin = filepath.Join(dir, "issuer"), filepath.Join(dir, "verifier")
	for _, n := range names {
		s.pprof[n] = freeAddr()
	}
}
