package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
)

// The revocation ingest and cold-start figures: goals, section and charts.

// ingestBatch is the batch size the ingest goal is judged at: the batches
// of the cold-start scenario.
const ingestBatch = coldBatch

// ingestFigure is BenchmarkIngest's CPU ns a revocation for a
// sub-benchmark (SET, batch=N); -1 when it did not run.
func (r *Report) ingestFigure(sub string) float64 {
	return r.GoBench.Median("BenchmarkIngest/"+sub, "cpu-ns/op")
}

// ingestGoals hold a verifier's CPU a revocation, and its cold start with a
// million revocations in its window.
func (r *Report) ingestGoals() []Goal {
	var gs []Goal
	batch, set := r.ingestFigure(fmt.Sprintf("batch=%d", ingestBatch)), r.ingestFigure("SET")
	g := Goal{Name: fmt.Sprintf("verifier CPU a revocation it ingests, batches of %d (Go benchmark)", ingestBatch), Target: "≤ 2 µs"}
	if batch > 0 {
		g.Known, g.Pass, g.Ratio = true, batch <= 2000, batch/2000
		g.Measured = fmt.Sprintf("%.2f µs", batch/1000)
		if set > 0 {
			g.Measured += fmt.Sprintf(" (one SET each: %.1f µs, %.0f× more)", set/1000, set/batch)
		}
		if n := r.ingestBreakEven(); n > 0 {
			g.Measured += fmt.Sprintf("; ≤ 2 µs from batches of %d up", n)
		}
	}
	gs = append(gs, g)
	c := r.Cold
	if c == nil || len(c.Series) == 0 || len(c.Series[0].Points) == 0 {
		return gs
	}
	pt := c.Series[0].Points[len(c.Series[0].Points)-1]
	ok := pt.ReadyFail == ""
	ready := Goal{Name: fmt.Sprintf("verifier cold start, %s live revocations in its window (%s): ready", count(pt.Entries), c.Series[0].Name),
		Target: "≤ 10 s", Known: true, Pass: ok && pt.Ready <= 10*time.Second, Ratio: pt.Ready.Seconds() / 10}
	ready.Measured = fmt.Sprintf("%.2f s (CPU %.2f s: %.2f µs a revocation)", pt.Ready.Seconds(), pt.CPU.Seconds(),
		float64(pt.CPU)/float64(max(pt.Entries, 1))/1000)
	if !ok {
		ready.Measured = "not ready: " + pt.ReadyFail
	}
	if s := r.coldSET(pt.Entries); s != nil {
		ready.Measured += fmt.Sprintf("; one SET each: %.2f s", s.Ready.Seconds())
	}
	per := float64(pt.RSS-c.Idle.RSS) / float64(max(pt.Entries, 1))
	rss := Goal{Name: fmt.Sprintf("verifier RSS over idle a revocation, %s in its window", count(pt.Entries)), Target: "≤ 48 B",
		Known: ok, Pass: per <= 48, Ratio: per / 48,
		Measured: fmt.Sprintf("%.1f B (%.1f MiB over %.1f MiB idle; %.1f B at the moment it was ready)", per,
			mib(pt.RSS-c.Idle.RSS), mib(c.Idle.RSS), float64(pt.RSSReady-c.Idle.RSS)/float64(max(pt.Entries, 1)))}
	return append(gs, ready, rss)
}

// coldSET is the point of the SET series at n entries, if measured.
func (r *Report) coldSET(n int) *ColdPoint {
	if r.Cold == nil || len(r.Cold.Series) < 2 {
		return nil
	}
	for i, p := range r.Cold.Series[1].Points {
		if p.Entries == n && p.ReadyFail == "" {
			return &r.Cold.Series[1].Points[i]
		}
	}
	return nil
}

// ingestBreakEven is the smallest batch at which a revocation costs at most
// 2 µs, from the one-event batch (a signature and one event) and the
// largest (one event, the signature shared): 0 if unknown or never.
func (r *Report) ingestBreakEven() int {
	one, big := r.ingestFigure("batch=1"), r.ingestFigure("batch=1024")
	if one <= 0 || big <= 0 || big >= 2000 {
		return 0
	}
	return int(math.Ceil((one - big) / (2000 - big)))
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dK", n/1000)
	}
	return fmt.Sprint(n)
}

// writeColdStart is the section of the ingest benchmark and scenario 12;
// charts are the charts drawn.
func (r *Report) writeColdStart(b *md, charts []string) {
	rows := r.GoBench != nil && r.ingestFigure("SET") > 0
	if !rows && r.Cold == nil {
		return
	}
	b.p("## 12. Revocation ingest and verifier cold start")
	b.p("")
	b.p("Every verifier reads every revocation. The issuer writes them as signed batches: the events of the logouts of one replica within `JOTGUARD_REVOCATION_BATCH_WAIT` (20 ms) share one write and one signature, which a verifier checks once for all of them; before, each event was a SET with a signature of its own (docs/tokens-and-events.md).")
	b.p("")
	if rows {
		b.p("**CPU a revocation**, `BenchmarkIngest` (sdk/kafkafeed): what a feed does with a record it read — verify it, add its events to the revocation set — per event, ES256, one goroutine. The CPU is the process's (the benchmark and the garbage collector's work for it, getrusage); the time an op took also counts the time the process waited for a core on this shared machine (section 5 has the raw lines):")
		b.p("")
		b.p("| record | CPU ns a revocation | ns a revocation | allocs a revocation |\n|---|---|---|---|")
		for _, sub := range []string{"SET", "batch=1", "batch=16", "batch=64", "batch=256", "batch=1024"} {
			if ns := r.ingestFigure(sub); ns > 0 {
				name := "one SET (before)"
				if n, ok := strings.CutPrefix(sub, "batch="); ok {
					name = "batch of " + n
				}
				b.p("| %s | %.0f | %.0f | %.0f |", name, ns, r.GoBench.Median("BenchmarkIngest/"+sub, "ns/op"),
					r.GoBench.Median("BenchmarkIngest/"+sub, "allocs/op"))
			}
		}
		b.p("")
		if n := r.ingestBreakEven(); n > 0 {
			b.p("A revocation costs the signature check divided by the batch's events, plus the decoding and the set insertion: at most 2 µs from batches of %d events up. With the default 20 ms wait an issuer replica writes at most 50 batches a second, so a verifier checks at most 50 signatures a second per issuer replica (%.1f ms of CPU a second at this machine's %.0f µs a signature), whatever the logout rate; from %d logouts a second per replica on, its batches hold %d events or more.", n, 50*r.ingestFigure("batch=1")/1e6, r.ingestFigure("batch=1")/1000, n*50, n)
			b.p("")
		}
	}
	c := r.Cold
	if c == nil {
		return
	}
	b.p("**Cold start.** bin/verifier started on a topic (6 partitions, dev stack's kfake) whose replay window holds N live session revocations, pinned to CPUs %q like the other verifiers: time from the process start to `/readyz` 200 (keys loaded, replay caught up; polled every 5 ms), the verifier's CPU until then, and its RSS once settled, over that of a verifier on an empty topic (%.1f MiB, ready in %s). The bench writes the records directly (signed on every core), each window adding to the last.", r.Cfg.ServerCPUs, mib(c.Idle.RSS), c.Idle.Ready.Round(time.Millisecond))
	b.p("")
	b.p("| records | revocations | ready | CPU | CPU a revocation | RSS over idle | B a revocation | B a revocation, at ready | set size |\n|---|---|---|---|---|---|---|---|---|")
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.ReadyFail != "" {
				b.p("| %s | %s | not ready: %s | | | | | | |", s.Name, count(p.Entries), p.ReadyFail)
				continue
			}
			n := float64(max(p.Entries, 1))
			b.p("| %s | %s | %.2f s | %.2f s | %.2f µs | %.1f MiB | %.1f | %.1f | %d |", s.Name, count(p.Entries), p.Ready.Seconds(),
				p.CPU.Seconds(), float64(p.CPU)/n/1000, mib(p.RSS-c.Idle.RSS), float64(p.RSS-c.Idle.RSS)/n,
				float64(p.RSSReady-c.Idle.RSS)/n, p.SetSize)
		}
	}
	b.p("")
	for _, c := range []struct{ file, alt string }{
		{"coldstart-ready.png", "ready time against the window"}, {"coldstart-rss.png", "RSS against the window"}} {
		if slices.Contains(charts, c.file) {
			b.p("![%s](img/%s)", c.alt, c.file)
			b.p("")
		}
	}
}

// coldCharts are the ready time and the RSS over idle against the window.
func coldCharts(r *Report) (ready, rss *plot.Plot) {
	c := r.Cold
	if c == nil || len(c.Series) == 0 {
		return nil, nil
	}
	ready = newPlot("Verifier cold start: ready time", "live revocations in the replay window", "process start → ready (s)")
	rss = newPlot("Verifier cold start: RSS over idle", "live revocations in the replay window", "RSS over an idle verifier (MiB)")
	var a, m []any
	var lo, hi float64 // the windows measured
	for _, s := range c.Series {
		var pr, pm plotter.XYs
		for _, p := range s.Points {
			if p.ReadyFail == "" {
				x := float64(p.Entries)
				pr = append(pr, plotter.XY{X: x, Y: p.Ready.Seconds()})
				pm = append(pm, plotter.XY{X: x, Y: mib(p.RSS - c.Idle.RSS)})
				lo, hi = min(x, cmp.Or(lo, x)), max(x, hi)
			}
		}
		if len(pr) > 0 {
			a, m = append(a, s.Name, pr), append(m, s.Name, pm)
		}
	}
	if len(a) == 0 {
		return nil, nil
	}
	// The goals: ready in 10 s, 48 bytes a revocation.
	a = append(a, "goal: 10 s", plotter.XYs{{X: lo, Y: 10}, {X: hi, Y: 10}})
	var goal plotter.XYs // a curve on the log scale: points along it
	for x := lo; x <= hi*1.001; x *= 1.2 {
		goal = append(goal, plotter.XY{X: x, Y: 48 * x / (1 << 20)})
	}
	m = append(m, "goal: 48 B a revocation", goal)
	for _, x := range []struct {
		p    *plot.Plot
		args []any
	}{{ready, a}, {rss, m}} {
		_ = plotutil.AddLinePoints(x.p, x.args...)
		x.p.X.Scale, x.p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		x.p.Legend.Top, x.p.Legend.Left = true, true
		x.p.Y.Min = 0
	}
	return ready, rss
}

func coldReadyChart(r *Report) *plot.Plot { p, _ := coldCharts(r); return p }
func coldRSSChart(r *Report) *plot.Plot   { _, p := coldCharts(r); return p }
