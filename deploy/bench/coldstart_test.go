package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// TestColdStartSmall runs scenario 12's parts at a tiny scale against the
// dev stack: revocations written as batches and as SETs, a bin/verifier
// started on each topic until it is ready with all of them, and the
// report's section, charts and goal rows. It asserts that they complete
// and count, never how fast.
func TestColdStartSmall(t *testing.T) {
	h := newHarness(t)
	ctx, log, procs, servers := h.ctx, h.log, h.procs, h.servers
	b := &bench{log: log, procs: procs, servers: servers}
	iss := sdktest.NewIssuer(t)
	brokers := os.Getenv("JOTGUARD_KAFKA_BROKERS")
	cs := &ColdStart{Batch: coldBatch}
	topic, err := createTopic(ctx, brokers, "bench-test-idle")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Idle, err = b.coldRun(ctx, iss, brokers, topic, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, per := range []int{coldBatch, 1} {
		topic, err := createTopic(ctx, brokers, "bench-test-cold")
		if err != nil {
			t.Fatal(err)
		}
		series := ColdSeries{Name: map[bool]string{true: "batches", false: "SETs"}[per > 1]}
		have := 0
		for _, n := range []int{100, 300} {
			records, err := produceRevocations(ctx, iss, brokers, topic, have, n-have, per)
			if want := (n - have + per - 1) / per; err != nil || records != want {
				t.Fatalf("produce %d revocations %d a record: %d records, %v; want %d", n-have, per, records, err, want)
			}
			have = n
			pt, err := b.coldRun(ctx, iss, brokers, topic, n, 0)
			if err != nil || pt.SetSize != n || pt.Applied != n || pt.Ready <= 0 || pt.RSS <= 0 {
				t.Fatalf("%s, %d revocations: %+v, %v", series.Name, n, pt, err)
			}
			series.Points = append(series.Points, pt)
		}
		cs.Series = append(cs.Series, series)
	}
	gb := &GoBench{Runs: map[string][]map[string]float64{}}
	for _, l := range parseBench([]byte("BenchmarkIngest/SET-2 10000 120000 ns/op 90000 cpu-ns/op 9500 B/op 119 allocs/op\n" +
		"BenchmarkIngest/batch=1-2 10000 100000 ns/op 70000 cpu-ns/op 2600 B/op 33 allocs/op\n" +
		"BenchmarkIngest/batch=64-2 700000 1700 ns/op 1650 cpu-ns/op 538 B/op 0 allocs/op\n" +
		"BenchmarkIngest/batch=1024-2 2000000 700 ns/op 600 cpu-ns/op 466 B/op 0 allocs/op\n")) {
		gb.Runs[l.Name] = append(gb.Runs[l.Name], l.Metrics)
	}
	rep := &Report{Cfg: Config{Quick: true, Runs: 1, Command: "go test ./deploy/bench"}, Started: time.Now(),
		Machine: describeMachine(), Cold: cs, GoBench: gb}
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeReport(rep, out, log); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 12. Revocation ingest and verifier cold start", "| batch of 64 | 1650 |",
		"PASS | verifier CPU a revocation it ingests, batches of 64", "≤ 2 µs from batches of 50 up",
		"verifier cold start, 300 live revocations in its window (batches): ready", "img/coldstart-ready.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	for _, img := range []string{"coldstart-ready.png", "coldstart-rss.png"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(out), "img", img)); err != nil {
			t.Errorf("chart %s: %v", img, err)
		}
	}
	t.Log(rep.Summary())
}
