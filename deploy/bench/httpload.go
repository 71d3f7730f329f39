package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// httpLoader runs the HTTP load of scenarios 4 and 8, pinned to the load
// CPUs: with wrk when it was chosen, else with `bench load` (loadMain).
type httpLoader struct {
	wrk         string // wrk's path; "" for the Go loader
	script      string // wrk's report script (wrkScript)
	tokenScript string // the same, rotating tokens (wrkTokensScript)
	cpus        string // taskset list
	self        string // this executable: `bench load`
}

// newHTTPLoader picks the generator, mode auto (wrk when on PATH), wrk or
// go; wrk's script is written to dir.
func newHTTPLoader(mode, cpus, dir string) (*httpLoader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h := &httpLoader{cpus: cpus, self: self}
	if mode == "go" {
		return h, nil
	}
	p, err := exec.LookPath("wrk")
	if err != nil {
		if mode == "wrk" {
			return nil, fmt.Errorf("--loadgen wrk: %w (apt-get install wrk)", err)
		}
		return h, nil
	}
	h.wrk, h.script, h.tokenScript = p, filepath.Join(dir, "report.lua"), filepath.Join(dir, "tokens.lua")
	if err := os.WriteFile(h.tokenScript, []byte(wrkTokensScript), 0o644); err != nil {
		return nil, err
	}
	return h, os.WriteFile(h.script, []byte(wrkScript), 0o644)
}

// Name is "wrk" or "go", as the report names the generator.
func (h *httpLoader) Name() string {
	if h.wrk != "" {
		return "wrk"
	}
	return "go"
}

func (h *httpLoader) String() string {
	if h.wrk != "" {
		return "wrk (" + h.wrk + ")"
	}
	return "the bench's Go loader"
}

// TokenFile is a file of one token per line, of which the first N are
// sent in rotation, one per request, as "Authorization: Bearer …".
type TokenFile struct {
	File string
	N    int
}

// Run is one closed-loop run against url at concurrency conc for d.
func (h *httpLoader) Run(name, url string, conc int, d time.Duration, hdrs ...string) (Result, error) {
	return h.RunTokens(name, url, conc, d, TokenFile{}, hdrs...)
}

// RunTokens is Run with each request carrying the next token of tokens
// (none when tokens.File is empty).
func (h *httpLoader) RunTokens(name, url string, conc int, d time.Duration, tokens TokenFile, hdrs ...string) (Result, error) {
	if h.wrk != "" {
		return h.loadWrk(name, url, conc, d, tokens, hdrs...)
	}
	argv := []string{h.self, "load", "--name", name, "--url", url, "--c", strconv.Itoa(conc), "--d", d.String()}
	if tokens.File != "" {
		argv = append(argv, "--tokens", tokens.File, "--limit", strconv.Itoa(tokens.N))
	}
	for _, hd := range hdrs {
		argv = append(argv, "-H", hd)
	}
	argv = pinned(h.cpus, argv...)
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

// loadMain is `bench load`: a closed-loop HTTP load run whose Result is
// printed as JSON, so that taskset can pin the load generator.
func loadMain(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "target URL")
	conc := fs.Int("c", 1, "concurrency")
	d := fs.Duration("d", time.Second, "duration")
	name := fs.String("name", "", "result name")
	want := fs.Int("want", 200, "expected status")
	tokenFile := fs.String("tokens", "", "file of tokens, one per line, sent in rotation as Authorization: Bearer")
	limit := fs.Int("limit", 0, "with --tokens: the first N tokens only (0: all)")
	var hdrs multiFlag
	fs.Var(&hdrs, "H", "header 'Name: value' (repeatable)")
	_ = fs.Parse(args)
	client := NewClient(*conc)
	hdr := http.Header{}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	var tokens []string
	if *tokenFile != "" {
		var err error
		if tokens, err = readTokens(*tokenFile, *limit); err != nil {
			return err
		}
	}
	op := func(ctx context.Context, w, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		req.Header = hdr.Clone()
		if len(tokens) > 0 {
			req.Header.Set("Authorization", "Bearer "+tokens[(i%len(tokens)+len(tokens))%len(tokens)])
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != *want {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	r := Load(context.Background(), *name, *conc, 0, *d, 20, op)
	return json.NewEncoder(os.Stdout).Encode(r)
}

// readTokens reads the first limit lines of path (0: all).
func readTokens(path string, limit int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() && (limit == 0 || len(out) < limit) {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
