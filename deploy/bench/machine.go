package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where the bench ran.
type Machine struct {
	CPU     string
	NProc   int
	MemMiB  int64
	Kernel  string
	Go      string
	Load    string // /proc/loadavg at start
	LoadEnd string // and at the end
	Redis   string
	Taskset bool
}

func describeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"), "%d", &kb)
		m.MemMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Load = loadAverage()
	if p, err := exec.LookPath("redis-server"); err == nil {
		out, _ := exec.Command(p, "--version").Output()
		m.Redis = strings.TrimSpace(string(out))
	} else {
		m.Redis = "miniredis (embedded)"
	}
	_, err := exec.LookPath("taskset")
	m.Taskset = err == nil
	return m
}

// loadAverage is the 1, 5 and 15-minute load averages of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
