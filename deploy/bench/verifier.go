package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// accessTTL is longer than the default so that a token minted before the
// verifier runs outlives them.
const accessTTL = "15m"

var verifierPprof = map[string]string{}

// startVerifier runs bin/verifier (SPEC §4) pinned to cpus; upstream set
// selects reverse-proxy mode; extra are more VAR=value settings.
func startVerifier(ctx context.Context, name, cpus string, env map[string]string, issuer, upstream string, extra ...string) (*Proc, error) {
	addr := freeAddr()
	e := envList(nil, append([]string{
		"JOTGUARD_VERIFIER_ADDR=" + addr,
		"JOTGUARD_ISSUER=" + issuer,
		"JOTGUARD_LOG_LEVEL=warn",
		"JOTGUARD_ACCESS_TTL=" + accessTTL,
	}, extra...)...)
	for _, k := range []string{"JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		if v := env[k]; v != "" {
			e = append(e, k+"="+v)
		}
	}
	if upstream != "" {
		e = append(e, "JOTGUARD_UPSTREAM="+upstream)
	}
	if pp := verifierPprof[name]; pp != "" {
		e = append(e, "BENCH_PPROF_ADDR="+pp)
	}
	p, err := start(name, cpus, e, cmp.Or(verifierBin, binDir+"/verifier"))
	if err != nil {
		return nil, err
	}
	p.Addr = addr
	if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// startOwn runs one of the bench's own servers (serveMain) pinned to cpus.
func startOwn(ctx context.Context, name, cpus string, args ...string) (*Proc, error) {
	addr := freeAddr()
	self, _ := os.Executable()
	p, err := start(name, cpus, nil, append([]string{self, "serve"}, append(args, "--addr", addr)...)...)
	if err != nil {
		return nil, err
	}
	p.Addr = addr
	if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", 30*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// loadHTTP runs wrk, or else `bench load`, pinned to the load CPUs and
// returns its Result.
func loadHTTP(name, url string, conc int, d time.Duration, hdrs ...string) (Result, error) {
	if wrkPath != "" {
		return loadWrk(name, url, conc, d, hdrs...)
	}
	self, _ := os.Executable()
	argv := []string{self, "load", "--name", name, "--url", url, "--c", strconv.Itoa(conc), "--d", d.String()}
	for _, h := range hdrs {
		argv = append(argv, "-H", h)
	}
	argv = pinned(cfg.LoadCPUs, argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("load %s: %w", name, err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("load %s: %w", name, err)
	}
	return r, nil
}

// Target is one server under HTTP load in scenarios 4 and 8.
type Target struct {
	Name string
	URL  string
	Hdrs []string
}

// runTargets measures each target at each concurrency, runs times,
// interleaved (target order rotates per run) so drift hits all alike.
func runTargets(targets []Target, concs []int, runs int, d time.Duration) map[string]map[int][]Result {
	out := map[string]map[int][]Result{}
	for run := range runs {
		for _, c := range concs {
			for k := range targets {
				t := targets[(k+run)%len(targets)]
				r, err := loadHTTP(t.Name, t.URL, c, d, t.Hdrs...)
				if err != nil {
					logf("  %s c=%d: %v", t.Name, c, err)
					continue
				}
				if out[t.Name] == nil {
					out[t.Name] = map[int][]Result{}
				}
				out[t.Name][c] = append(out[t.Name][c], r)
				logf("  run %d %-28s c=%-3d %9.0f req/s p50 %-9s p99 %-9s errors %d %s", run+1, t.Name, c, r.RPS(),
					r.Q(0.5).Round(time.Microsecond), r.Q(0.99).Round(time.Microsecond), r.Errors, r.FirstErr)
			}
		}
	}
	return out
}

// Propagation is scenario 6: per verifier, logout response → first 401.
type Propagation struct {
	Delays  map[string][]time.Duration
	Missing map[string]int // never saw 401 within the timeout
}

// propagation logs out n sessions one at a time and polls each verifier
// with the session's access token until it answers 401.
func propagation(ctx context.Context, c *IssuerClient, verifiers map[string]string, run, n int) (Propagation, error) {
	out := Propagation{Delays: map[string][]time.Duration{}, Missing: map[string]int{}}
	// n sessions of n/10+1 users (login rate limit is off in the bench)
	users := n/10 + 1
	for u := range users {
		if err := c.Register(ctx, email(run, u)); err != nil {
			return out, err
		}
	}
	sess := make([]Session, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := c.Login(ctx, email(run, i%users))
			if err != nil {
				errc <- err
			}
			sess[i] = s
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return out, err
	}
	hc := NewClient(4)
	check := func(url, tok string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/")
		req.Header.Set("X-Forwarded-Host", "app.example")
		resp, err := hc.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range verifiers {
			if !yield(k) {
				return
			}
		}
	})
	for _, s := range sess {
		for _, name := range names {
			if st := check(verifiers[name], s.Access); st != 200 {
				return out, fmt.Errorf("%s: a fresh token got %d", name, st)
			}
		}
		if err := c.Logout(ctx, s.Access); err != nil {
			return out, err
		}
		t0 := time.Now()
		var mu sync.Mutex
		var pw sync.WaitGroup
		for _, name := range names {
			pw.Go(func() {
				for time.Since(t0) < 5*time.Second {
					if check(verifiers[name], s.Access) == 401 {
						d := time.Since(t0)
						mu.Lock()
						out.Delays[name] = append(out.Delays[name], d)
						mu.Unlock()
						return
					}
				}
				mu.Lock()
				out.Missing[name]++
				mu.Unlock()
			})
		}
		pw.Wait()
	}
	return out, nil
}

// Memory is scenario 7.
type Memory struct {
	Idle, Loaded int64 // verifier RSS, bytes
	Before       int64 // RSS after the load, before the first injection
	Entries      []int // live revocation entries injected (cumulative)
	RSS          []int64
	SetSize      []int // the verifier's own count, from /metrics
	InProc       []SetMem
	LoadResult   Result
}

// SetMem is the memory a revocation.Set takes, measured in the bench: its
// Go heap, and its slot tables, which on Linux are mmap'd outside the heap
// (revocation.Set.Bytes).
type SetMem struct {
	Entries    int
	HeapBytes  int64
	TableBytes int64
}

func (m SetMem) PerEntry() float64 { return float64(m.HeapBytes+m.TableBytes) / float64(m.Entries) }

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// setMemory fills a revocation.Set with n session events and measures the
// heap growth; the events are built before the baseline.
func setMemory(n int) SetMem {
	evs := make([]revocation.Event, n)
	now := time.Now()
	for i := range evs {
		evs[i] = revocation.Event{ID: fmt.Sprintf("evt-%d", i), Issuer: "http://127.0.0.1:8080",
			Subject: fmt.Sprintf("user-%d", i%50000), SessionID: fmt.Sprintf("sid-%d", i), At: now}
	}
	debug.FreeOSMemory()
	base := heapInUse()
	set := revocation.NewSet(5*time.Minute+30*time.Second, nil)
	for _, e := range evs {
		set.Add(e)
	}
	used := heapInUse() - base
	runtime.KeepAlive(set)
	runtime.KeepAlive(evs)
	return SetMem{Entries: set.Len(), HeapBytes: used, TableBytes: set.Bytes()}
}

// metric reads one gauge from a Prometheus text endpoint; -1 if absent.
func metric(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(name):]), 64)
			return v
		}
	}
	return -1
}

// inject signs n session-revocation SETs with iss's key and writes them to
// the topic.
func inject(ctx context.Context, iss *sdktest.Issuer, brokers, topic string, from, n int) error {
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Topic: topic,
		Balancer: &kafka.Hash{}, BatchSize: 1000, BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafka.RequireOne, AllowAutoTopicCreation: false}
	defer w.Close()
	const batch = 2000
	workers := runtime.NumCPU()
	for lo := from; lo < from+n; lo += batch {
		hi := min(lo+batch, from+n)
		msgs := make([]kafka.Message, hi-lo)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Go(func() {
				for i := lo + k; i < hi; i += workers {
					sub := fmt.Sprintf("memuser-%d", i%50000)
					v := iss.RevocationSET(nil, revocation.Event{Subject: sub, SessionID: fmt.Sprintf("memsid-%d", i),
						Reason: revocation.ReasonLogout, Initiator: "user"})
					msgs[i-lo] = kafka.Message{Key: []byte(sub), Value: v,
						Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/secevent+jwt")}}}
				}
			})
		}
		wg.Wait()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
	}
	return nil
}

// sessionServerSetup stores n sessions for the Redis-session server.
func sessionServerSetup(ctx context.Context, redisURL string, n int) ([]string, error) {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d-%s", i, runTag)
		v, _ := json.Marshal(map[string]any{"Sub": fmt.Sprint("user-", i), "Email": "x@bench.example", "Roles": []string{"user"}})
		if err := rdb.Set(ctx, "bench:sess:"+ids[i], v, time.Hour).Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
