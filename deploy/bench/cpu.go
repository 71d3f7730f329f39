package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The CPU time each process spends during a workload says where a gap to a
// ceiling goes: argon2id in the issuer, FerretDB in the dev stack, Redis,
// or the load generator itself. Linux only; elsewhere the figures are empty.

// clockTick is USER_HZ, which is 100 on every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time of process pid (all its threads).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// comm (field 2) may hold spaces: fields are counted after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * clockTick, true
}

// children lists the pids of pid's live children.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// CPUWatch names the processes whose CPU time a workload records.
type CPUWatch map[string]int

// watchIssuer: the issuer, the dev stack's process (FerretDB and kfake run
// in it), its redis-server child, and the bench process (the load
// generator of the issuer workloads).
func watchIssuer(issuer *Proc, ds *Devstack) CPUWatch {
	w := CPUWatch{"issuer": issuer.Cmd.Process.Pid, "bench (load)": os.Getpid()}
	if ds != nil && ds.Proc != nil {
		w[devstackProc] = ds.Cmd.Process.Pid
		for _, c := range children(ds.Cmd.Process.Pid) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); err == nil && strings.HasPrefix(string(b), "redis-server") {
				w["redis-server"] = c
			}
		}
	}
	return w
}

// Snapshot reads every watched process's CPU time.
func (w CPUWatch) Snapshot() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range w {
		if d, ok := procCPU(pid); ok {
			out[name] = d
		}
	}
	return out
}

// Since is the CPU each process used since before.
func (w CPUWatch) Since(before map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, d := range w.Snapshot() {
		if b, ok := before[name]; ok {
			out[name] = d - b
		}
	}
	return out
}

// devstackProc names the dev stack's process in a CPUWatch.
const devstackProc = "devstack (FerretDB, kfake)"

// cpuOrder is the report's column order.
var cpuOrder = []string{"issuer", devstackProc, "redis-server", "bench (load)"}
