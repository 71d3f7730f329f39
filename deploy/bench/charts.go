package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawCharts writes the PNG charts under dir and returns their file names.
func drawCharts(r *Report, dir string) []string {
	var out []string
	save := func(p *plot.Plot, name string) {
		if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, name)); err != nil {
			logf("chart %s: %v", name, err)
			return
		}
		out = append(out, name)
	}
	if r.HTTP != nil {
		// Latency distribution at c=64: the run with the median req/s.
		p := plot.New()
		p.Title.Text = "Latency distribution at concurrency 64 (median run)"
		p.X.Label.Text = "latency (ms)"
		p.Y.Label.Text = "fraction of requests ≤ latency"
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
		if len(args) > 0 {
			_ = plotutil.AddLines(p, args...)
			p.X.Max = xmax * 1.5
			save(p, "verifier-latency.png")
		}
		// Throughput vs concurrency.
		p = plot.New()
		p.Title.Text = "Throughput vs concurrency (median req/s)"
		p.X.Label.Text = "concurrency"
		p.Y.Label.Text = "req/s"
		p.Legend.Top = true
		args = nil
		for _, t := range r.HTTPOrder {
			var pts plotter.XYs
			for _, c := range r.Concs {
				if rps, _, _, _, _, _, ok := r.httpFig(t, c); ok {
					pts = append(pts, plotter.XY{X: float64(c), Y: rps})
				}
			}
			if len(pts) > 0 {
				args = append(args, t, pts)
			}
		}
		if len(args) > 0 {
			_ = plotutil.AddLinePoints(p, args...)
			p.Y.Min = 0
			save(p, "throughput-vs-concurrency.png")
		}
	}
	if r.Prop != nil && len(r.Prop.Delays) > 0 {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Revocation propagation: logout response → first 401 (%d logouts)", r.PropN)
		p.X.Label.Text = "delay (ms)"
		p.Y.Label.Text = "fraction of logouts"
		p.Legend.Top, p.Legend.Left = false, false
		var args []any
		for _, k := range slices.Sorted(mapsKeys(r.Prop.Delays)) {
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
		save(p, "propagation-cdf.png")
	}
	return out
}
