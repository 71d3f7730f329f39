package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrk, from Debian's package, is the HTTP load generator of scenarios 4 and
// 8 when it is installed: it is C on epoll with the request serialized once,
// so on its own core it outruns a Go server on the other one, and the figure
// is the server's, not the generator's (the bench's Go loader, which builds
// a net/http request per operation, is the fallback). Its Lua done hook
// prints the run as one JSON line: counts, errors and 1001 latency
// quantiles in microseconds.
const wrkScript = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"q":[',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  for i = 0, 1000 do
    if i > 0 then io.write(",") end
    io.write(string.format("%d", latency:percentile(i / 10)))
  end
  io.write("]}\n")
end
`

// wrkTokensScript is wrkScript plus a request per token: each request
// carries the next token of a file of one token per line (the first limit
// lines), in rotation, with the headers given on the command line. The
// requests are formatted once, in init, so that a run costs wrk what a
// fixed request does. wrk's Lua is LuaJIT in GC64 mode here: a million
// requests of ~700 bytes (about 1.3 GB) fit in one thread's state.
const wrkTokensScript = wrkScript + `
local reqs, n, idx = {}, 0, 0
function init(args)
  local path, limit = args[1], tonumber(args[2])
  local headers = {}
  for i = 3, #args do
    local k, v = string.match(args[i], "^([^:]+):%s*(.*)$")
    headers[k] = v
  end
  for line in io.lines(path) do
    headers["Authorization"] = "Bearer " .. line
    n = n + 1
    reqs[n] = wrk.format("GET", nil, headers)
    if n >= limit then break end
  end
end
request = function()
  idx = idx % n + 1
  return reqs[idx]
end
`

// wrkRun is what wrkScript prints.
type wrkRun struct {
	Requests   int     `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Connect    int     `json:"connect"`
	Read       int     `json:"read"`
	Write      int     `json:"write"`
	Status     int     `json:"status"`
	Timeout    int     `json:"timeout"`
	Q          []int64 `json:"q"`
}

// wrkDuration rounds d up to whole seconds: wrk takes no fractions.
func wrkDuration(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// loadWrk runs wrk pinned to the load CPUs: one thread, conc connections,
// each a closed loop like the Go loader's workers. With tokens set, each
// request carries the next of the first tokens.N lines of tokens.File
// (wrkTokensScript).
func (h *httpLoader) loadWrk(name, url string, conc int, d time.Duration, tokens TokenFile, hdrs ...string) (Result, error) {
	argv := []string{h.wrk, "-t1", "-c" + strconv.Itoa(conc), "-d" + strconv.Itoa(int(wrkDuration(d)/time.Second)) + "s",
		"--timeout", "5s"}
	if tokens.File == "" {
		argv = append(argv, "-s", h.script)
		for _, hd := range hdrs {
			argv = append(argv, "-H", hd)
		}
		argv = append(argv, url)
	} else {
		argv = append(argv, "-s", h.tokenScript, url, "--", tokens.File, strconv.Itoa(tokens.N))
		argv = append(argv, hdrs...)
	}
	argv = pinned(h.cpus, argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("wrk %s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	i := bytes.LastIndex(out, []byte("\n{"))
	if i < 0 {
		return Result{}, fmt.Errorf("wrk %s: no report line in %q", name, out)
	}
	var wr wrkRun
	if err := json.Unmarshal(out[i+1:], &wr); err != nil {
		return Result{}, fmt.Errorf("wrk %s: %w", name, err)
	}
	return wr.result(name, conc), nil
}

func (w wrkRun) result(name string, conc int) Result {
	r := Result{Name: name, Conc: conc, N: w.Requests, Elapsed: time.Duration(w.DurationUS) * time.Microsecond,
		Errors: w.Connect + w.Read + w.Write + w.Status + w.Timeout}
	if r.Errors > 0 {
		r.FirstErr = fmt.Sprintf("wrk errors: connect %d, read %d, write %d, non-2xx/3xx %d, timeout %d",
			w.Connect, w.Read, w.Write, w.Status, w.Timeout)
	}
	if w.Requests > 0 {
		for _, us := range w.Q {
			r.Quantiles = append(r.Quantiles, time.Duration(us)*time.Microsecond)
		}
	}
	return r
}
