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

// runGoBench runs the sdk's Go benchmarks in the sdk module under root;
// quick runs the three Verify figures only, once each.
func runGoBench(ctx context.Context, log *logger, root string, quick bool) (*GoBench, error) {
	count, bt := "3", "500ms"
	pattern, pkgs := ".", []string{"./..."}
	if quick {
		count, bt, pattern, pkgs = "1", "50ms", "Verify|RawJWT|Ingest", []string{".", "./kafkafeed"}
	}
	args := append([]string{"test", "-run=^$", "-bench=" + pattern, "-benchmem", "-count=" + count, "-benchtime=" + bt}, pkgs...)
	g := &GoBench{Command: "cd sdk && go " + strings.Join(args, " "), Runs: map[string][]map[string]float64{}}
	log.Printf("sdk Go benchmarks: %s", g.Command)
	out, err := goTest(ctx, filepath.Join(root, "sdk"), nil, args...)
	g.Raw = string(out)
	for _, l := range parseBench(out) {
		if _, ok := g.Runs[l.Name]; !ok {
			g.Order = append(g.Order, l.Name)
		}
		g.Runs[l.Name] = append(g.Runs[l.Name], l.Metrics)
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

// goTest runs `go args…` in the module at dir with env added to the
// bench's environment, and returns its standard output; its standard error
// goes to the bench's.
func goTest(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd.Output()
}

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	Name    string             // without the -GOMAXPROCS suffix
	N       int                // iterations
	Metrics map[string]float64 // unit → value
}

// parseBench reads the result lines of `go test -bench` output.
func parseBench(out []byte) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		l := benchLine{Name: f[0], Metrics: map[string]float64{}}
		if i := strings.LastIndexByte(l.Name, '-'); i > 0 {
			l.Name = l.Name[:i] // the -GOMAXPROCS suffix
		}
		l.N, _ = strconv.Atoi(f[1])
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				l.Metrics[f[i+1]] = v
			}
		}
		lines = append(lines, l)
	}
	return lines
}
