package main

import (
	"context"
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
	mongo := os.Getenv("JOTGUARD_MONGO_URI")
	root, _ := filepath.Abs("../..")
	bins := []string{"issuer", "verifier"}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil || mongo == "" {
			msg := "needs bin/issuer, bin/verifier (make build) and the dev stack (make test)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg + " (CI is set: a missing backend fails)")
			}
			t.Skip(msg)
		}
	}
	cfg = Config{Quick: true, Root: root, Runs: 1, Skip: map[string]bool{}, Command: "go test ./deploy/bench"}
	binDir, logDir = filepath.Join(root, "bin"), t.TempDir()
	t.Cleanup(stopAll)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ds := &Devstack{Env: map[string]string{}}
	for _, k := range []string{"JOTGUARD_MONGO_URI", "JOTGUARD_REDIS_URL", "JOTGUARD_KAFKA_BROKERS", "JOTGUARD_REVOCATION_TOPIC"} {
		ds.Env[k] = os.Getenv(k)
	}
	_, ic, err := startIssuer(ctx, ds, "", "benchtest"+runTag)
	if err != nil {
		t.Fatal(err)
	}
	res, err := authixWorkloads(ctx, ic, CPUWatch{"bench (load)": os.Getpid()}, 0, 4, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := refreshCeiling(ctx, root, "sign+rotate", ds.Env["JOTGUARD_REDIS_URL"], 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ic.Login(ctx, email(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	v, err := startVerifier(ctx, "verifier-test", "", ds.Env, ic.Base, "")
	if err != nil {
		t.Fatal(err)
	}
	hv, err := loadHTTP(tForward, "http://"+v.Addr+"/authz/forward-auth", 2, 200*time.Millisecond,
		"Authorization: Bearer "+sess.Access, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /", "X-Forwarded-Host: a.example")
	if err != nil {
		t.Fatal(err)
	}
	// wrk, the generator `make bench` uses when installed (.ci/run installs it).
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed (CI is set): apt-get install wrk")
		}
		t.Log("wrk not installed: its load path is not tested")
	} else {
		if err := useWrk("wrk"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { wrkPath = "" })
		hw, err := loadHTTP(tForward, "http://"+v.Addr+"/authz/forward-auth", 2, 200*time.Millisecond,
			"Authorization: Bearer "+sess.Access, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /", "X-Forwarded-Host: a.example")
		if err != nil {
			t.Fatal(err)
		}
		if hw.N == 0 || hw.Errors != 0 || len(hw.Quantiles) != 1001 || hw.Q(0.5) <= 0 {
			t.Fatalf("wrk run: %+v", hw)
		}
		// wrk counts a non-2xx answer as an error: no token → 401.
		bad, err := loadHTTP(tForward, "http://"+v.Addr+"/authz/forward-auth", 1, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if bad.Errors == 0 || bad.Errors != bad.N {
			t.Fatalf("wrk run of 401s: %d errors in %d requests (%s)", bad.Errors, bad.N, bad.FirstErr)
		}
	}
	ac, err := argon2Ceiling(1024, 1, 1, 1)
	if err != nil || ac.PerSec <= 0 || ac.Parallel <= 0 {
		t.Fatalf("argon2 ceiling: %+v, %v", ac, err)
	}
	rep := &Report{Cfg: cfg, Started: time.Now(), Machine: describeMachine(), N: 4, RefreshUsers: 2,
		Issuer: []IssuerResults{res}, Ceiling: []Result{ce}, Argon: []Argon2Ceiling{ac},
		Concs: []int{2}, HTTPOrder: []string{tForward}, HTTP: map[string]map[int][]Result{tForward: {2: {hv}}},
		Mem: &Memory{InProc: []SetMem{setMemory(1000)}}}
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeReport(rep, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "## Goals") || !strings.Contains(string(b), tForward) {
		t.Fatalf("report: %v\n%s", err, b)
	}
	t.Log(rep.Summary())
}
