package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// GoBench is scenario 5: the sdk's own Go benchmarks.
type GoBench struct {
	Command   string
	Raw       string
	Benchstat string                          // benchstat's table, when it is installed
	Runs      map[string][]map[string]float64 // name → per run: unit → value
	Order     []string
}

// Median returns the median of unit over the runs of name; -1 if absent.
func (g *GoBench) Median(name, unit string) float64 {
	if g == nil {
		return -1
	}
	var v []float64
	for _, r := range g.Runs[name] {
		if x, ok := r[unit]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return -1
	}
	return medianF(v)
}

func runGoBench(ctx context.Context) (*GoBench, error) {
	count, bt := "3", "500ms"
	pattern, pkgs := ".", "./..."
	if cfg.Quick { // the three Verify figures only
		count, bt, pattern, pkgs = "1", "50ms", "Verify|RawJWT", "."
	}
	args := []string{"test", "-run=^$", "-bench=" + pattern, "-benchmem", "-count=" + count, "-benchtime=" + bt, pkgs}
	g := &GoBench{Command: "cd sdk && go " + strings.Join(args, " "), Runs: map[string][]map[string]float64{}}
	logf("sdk Go benchmarks: %s", g.Command)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(cfg.Root, "sdk")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	g.Raw = string(out)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the -GOMAXPROCS suffix
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		if _, ok := g.Runs[name]; !ok {
			g.Order = append(g.Order, name)
		}
		g.Runs[name] = append(g.Runs[name], m)
	}
	if err != nil {
		return g, err
	}
	bs, lerr := exec.LookPath("benchstat")
	if lerr != nil {
		gp, _ := exec.Command("go", "env", "GOPATH").Output()
		bs = filepath.Join(strings.TrimSpace(string(gp)), "bin", "benchstat")
	}
	if _, serr := os.Stat(bs); serr == nil {
		f, _ := os.CreateTemp("", "sdkbench-*.txt")
		_, _ = f.Write(out)
		f.Close()
		defer os.Remove(f.Name())
		if t, err := exec.Command(bs, f.Name()).Output(); err == nil {
			g.Benchstat = strings.ReplaceAll(string(t), f.Name(), "sdk")
		}
	}
	return g, nil
}
