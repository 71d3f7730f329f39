package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawCharts writes the PNG charts under dir and returns their file names;
// a chart that fails is logged and left out.
func drawCharts(r *Report, dir string, log *logger) []string {
	var out []string
	for _, c := range []struct {
		name string
		plot *plot.Plot // nil: nothing to draw
	}{
		{"verifier-latency.png", latencyChart(r)},
		{"throughput-vs-concurrency.png", throughputChart(r)},
		{"propagation-cdf.png", propagationChart(r)},
		{"coldstart-ready.png", coldReadyChart(r)},
		{"coldstart-rss.png", coldRSSChart(r)},
	} {
		if c.plot == nil {
			continue
		}
		if err := c.plot.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, c.name)); err != nil {
			log.Printf("chart %s: %v", c.name, err)
			continue
		}
		out = append(out, c.name)
	}
	return out
}

// newPlot is an empty plot with its title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	return p
}

// latencyChart is the latency distribution of each HTTP target at c=64,
// from the run with the median req/s.
func latencyChart(r *Report) *plot.Plot {
	p := newPlot("Latency distribution at concurrency 64 (median run)", "latency (ms)", "fraction of requests ≤ latency")
	p.Legend.Top, p.Legend.Left = false, false
	var args []any
	var xmax float64
	for _, t := range r.HTTPOrder {
		rs := slices.Clone(r.HTTP[t][64])
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b Result) int { return int(a.RPS() - b.RPS()) })
		res := rs[len(rs)/2]
		pts := make(plotter.XYs, 0, len(res.Quantiles))
		for i, q := range res.Quantiles[:len(res.Quantiles)-1] { // to p99.9
			pts = append(pts, plotter.XY{X: float64(q) / 1e6, Y: float64(i) / 1000})
		}
		xmax = max(xmax, float64(res.Q(0.99))/1e6)
		args = append(args, t, pts)
	}
	if len(args) == 0 {
		return nil
	}
	_ = plotutil.AddLines(p, args...)
	p.X.Max = xmax * 1.5
	return p
}

// throughputChart is the median req/s of each HTTP target against the
// concurrency.
func throughputChart(r *Report) *plot.Plot {
	p := newPlot("Throughput vs concurrency (median req/s)", "concurrency", "req/s")
	p.Legend.Top = true
	var args []any
	for _, t := range r.HTTPOrder {
		var pts plotter.XYs
		for _, c := range r.Concs {
			if f := r.httpFig(t, c); f.OK {
				pts = append(pts, plotter.XY{X: float64(c), Y: f.RPS})
			}
		}
		if len(pts) > 0 {
			args = append(args, t, pts)
		}
	}
	if len(args) == 0 {
		return nil
	}
	_ = plotutil.AddLinePoints(p, args...)
	p.Y.Min = 0
	return p
}

// propagationChart is the CDF of the revocation delays, per verifier.
func propagationChart(r *Report) *plot.Plot {
	if r.Prop == nil || len(r.Prop.Delays) == 0 {
		return nil
	}
	p := newPlot(fmt.Sprintf("Revocation propagation: logout response → first 401 (%d logouts)", r.PropN),
		"delay (ms)", "fraction of logouts")
	p.Legend.Top, p.Legend.Left = false, false
	var args []any
	for _, k := range slices.Sorted(maps.Keys(r.Prop.Delays)) {
		d := slices.Clone(r.Prop.Delays[k])
		slices.Sort(d)
		pts := make(plotter.XYs, len(d))
		for i, x := range d {
			pts[i] = plotter.XY{X: float64(x) / float64(time.Millisecond), Y: float64(i+1) / float64(len(d))}
		}
		args = append(args, k, pts)
	}
	_ = plotutil.AddLines(p, args...)
	p.Y.Min, p.Y.Max = 0, 1
	return p
}
