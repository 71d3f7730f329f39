package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for bin/bench when the bench
// re-executes itself (bench serve …, bench load …, bench argon2 …).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "load" || os.Args[1] == "argon2") {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestLoadCountsEveryOperation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := NewClient(4)
	get := func(path string) Op {
		return func(ctx context.Context, w, i int) error {
			resp, err := c.Get(srv.URL + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	r := Load(t.Context(), "ok", 4, 100, 0, 1, get("/"))
	if r.N != 100 || r.Errors != 0 || len(r.Quantiles) != 1001 || r.Q(.99) < r.Q(.5) {
		t.Fatalf("N %d errors %d quantiles %d p50 %s p99 %s", r.N, r.Errors, len(r.Quantiles), r.Q(.5), r.Q(.99))
	}
	if r := Load(t.Context(), "fail", 2, 10, 0, 0, get("/fail")); r.Errors != 10 || !strings.Contains(r.FirstErr, "418") {
		t.Fatalf("errors %d, first %q", r.Errors, r.FirstErr)
	}
}

// TestTinyBench is the CI smoke test of the harness: a tiny run of the
// issuer workloads, the refresh ceiling, the verifier under pinned load and
// the report writer, against the dev stack that `make test` starts. It
// asserts that everything completes, never how fast.
func TestTinyBench(t *testing.T) {
	h := newHarness(t)
	ctx, log, servers, root, dir := h.ctx, h.log, h.servers, h.root, h.dir
	ds := &Devstack{Env: map[string]string{}}
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		ds.Env[k] = os.Getenv(k)
	}
	tag := strings.ToLower(rand.Text()[:6])
	_, ic, err := servers.Issuer(ctx, ds, "", "benchtest"+tag, tag)
	if err != nil {
		t.Fatal(err)
	}
	res, err := authixWorkloads(ctx, log, ic, CPUWatch{"bench (load)": os.Getpid()}, 0, 4, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := refreshCeiling(ctx, root, "sign+rotate", ds.Env["JOTGUARD_REDIS_URL"], 4, 200*time.Millisecond)
	if err != nil || ce.N == 0 || ce.Errors != 0 {
		t.Fatalf("refresh ceiling: %+v, %v", ce, err)
	}
	hv := testVerifierLoad(ctx, t, servers, ds, ic, dir)
	intro, err := measureIntrospection(ctx, log, servers, ds, tag, "", 2, 200*time.Millisecond, 1)
	if err != nil || intro.Verifier[0].N == 0 || intro.Verifier[0].Errors != 0 || intro.Issuer[0].N == 0 || intro.Issuer[0].Errors != 0 {
		t.Fatalf("introspection: %+v, %v", intro, err)
	}
	ac, err := argon2Ceiling(1024, 1, 1, 1)
	if err != nil || ac.PerSec <= 0 || ac.Parallel <= 0 {
		t.Fatalf("argon2 ceiling: %+v, %v", ac, err)
	}
	rep := &Report{Cfg: Config{Quick: true, Runs: 1, Command: "go test ./deploy/bench"}, Started: time.Now(),
		Machine: describeMachine(), N: 4, RefreshUsers: 2,
		Issuer: []IssuerResults{res}, Ceiling: []Result{ce}, Argon: []Argon2Ceiling{ac},
		Concs: []int{2}, HTTPOrder: []string{tForward}, HTTP: map[string]map[int][]Result{tForward: {2: {hv}}},
		Mem: &Memory{InProc: []SetMem{setMemory(1000)}}, Intro: intro,
		// The sections of the Redis Cluster, distinct tokens and peers, on
		// this run's figures: they are written, whatever the numbers.
		Cluster: []ClusterResults{{Refresh: res.Refresh, Ceiling: ce}}, ClusterURL: "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
		Distinct: &Distinct{Counts: []int{10}, Conc: 2, Order: []string{tDistinctBare, tDistinctVerifier}, CacheSize: 10000,
			Lifetime: tokenLifetime, HTTP: map[string]map[int][]Result{tDistinctBare: {10: {hv}}, tDistinctVerifier: {10: {hv}}}},
		Peers:  []PeerBuild{{Name: "oauth2-proxy", Module: oauth2ProxyModule, Version: oauth2ProxyVersion, Err: "not built in this test"}},
		Logout: &LogoutCheck{Before: map[string]int{tForward: 200}, After: map[string]int{tForward: 401}}}
	testReport(t, rep, log, "## 9.", "## 10.", "## 11.", "## 13.", "verifier ÷ issuer", "logout → the old token rejected")
}

// harness is what a test of the harness runs on: the repository root
// (requireStack), a context bounded to 2 minutes, a logger to the test's
// output, and processes and servers stopped when the test ends.
type harness struct {
	ctx       context.Context
	root, dir string
	log       *logger
	procs     *Procs
	servers   *Servers
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{root: requireStack(t), dir: t.TempDir(), log: newLogger(t.Output())}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	h.ctx = ctx
	h.procs = newProcs(h.dir)
	t.Cleanup(h.procs.StopAll)
	var err error
	if h.servers, err = newServers(h.procs, filepath.Join(h.root, "bin")); err != nil {
		t.Fatal(err)
	}
	return h
}

// requireStack answers the repository root when bin/issuer, bin/verifier
// and the dev stack's settings are there; it skips the test otherwise, or
// fails it when CI is set.
func requireStack(t *testing.T) string {
	t.Helper()
	root, _ := filepath.Abs("../..")
	for _, b := range []string{"issuer", "verifier"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil || os.Getenv("JOTGUARD_MONGO_URI") == "" {
			msg := "needs bin/issuer, bin/verifier (make build) and the dev stack (make test)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg + " (CI is set: a missing backend fails)")
			}
			t.Skip(msg)
		}
	}
	return root
}

// testVerifierLoad starts a verifier and runs the Go loader against it,
// then wrk when it is installed; it answers the Go loader's run.
func testVerifierLoad(ctx context.Context, t *testing.T, servers *Servers, ds *Devstack, ic *IssuerClient, dir string) Result {
	sess, err := ic.Login(ctx, ic.Email(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	v, err := servers.Verifier(ctx, "verifier-test", "", ds.Env, ic.Base, "")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + v.Addr + "/authz/forward-auth"
	hdrs := []string{"Authorization: Bearer " + sess.Access, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /", "X-Forwarded-Host: a.example"}
	goLoad, err := newHTTPLoader("go", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := goLoad.Run(tForward, url, 2, 200*time.Millisecond, hdrs...)
	if err != nil {
		t.Fatal(err)
	}
	// wrk, the generator `make bench` uses when installed (.ci/run installs it).
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed (CI is set): apt-get install wrk")
		}
		t.Log("wrk not installed: its load path is not tested")
		return hv
	}
	wrk, err := newHTTPLoader("wrk", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := wrk.Run(tForward, url, 2, 200*time.Millisecond, hdrs...)
	if err != nil {
		t.Fatal(err)
	}
	if hw.N == 0 || hw.Errors != 0 || len(hw.Quantiles) != 1001 || hw.Q(0.5) <= 0 {
		t.Fatalf("wrk run: %+v", hw)
	}
	// wrk counts a non-2xx answer as an error: no token → 401.
	bad, err := wrk.Run(tForward, url, 1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Errors == 0 || bad.Errors != bad.N {
		t.Fatalf("wrk run of 401s: %d errors in %d requests (%s)", bad.Errors, bad.N, bad.FirstErr)
	}
	return hv
}

// testReport writes rep and checks that it holds the goals, the
// verifier's row and each of want.
func testReport(t *testing.T, rep *Report, log *logger, want ...string) {
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeReport(rep, out, log); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	for _, w := range append([]string{"## Goals", tForward}, want...) {
		if err != nil || !strings.Contains(string(b), w) {
			t.Fatalf("report lacks %q: %v\n%s", w, err, b)
		}
	}
	t.Log(rep.Summary())
}
