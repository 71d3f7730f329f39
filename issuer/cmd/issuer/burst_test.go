package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

// memCgroup is a memory cgroup the test made, limited to limit bytes.
type memCgroup struct {
	dir     string
	v2      bool
	procsFn string
}

// newMemCgroup makes a memory cgroup (v2, else v1) limited to limit bytes,
// removed when the test ends; nil where this machine has no writable
// memory cgroup.
func newMemCgroup(t *testing.T, limit int64) *memCgroup {
	name := "jotguard-test-" + strings.ToLower(rand.Text()[:8])
	for _, c := range []struct {
		root, limitFile string
		v2              bool
	}{
		{"/sys/fs/cgroup", "memory.max", true},
		{"/sys/fs/cgroup/unified", "memory.max", true},
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes", false},
	} {
		if c.v2 {
			ctl, err := os.ReadFile(filepath.Join(c.root, "cgroup.controllers"))
			if err != nil || !strings.Contains(string(ctl), "memory") {
				continue
			}
		}
		dir := filepath.Join(c.root, name)
		if os.Mkdir(dir, 0o755) != nil {
			continue
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		if err := os.WriteFile(filepath.Join(dir, c.limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
			continue
		}
		if !c.v2 { // v1 counts swap separately: no swap, so the limit is the memory
			_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
		}
		return &memCgroup{dir: dir, v2: c.v2, procsFn: filepath.Join(dir, "cgroup.procs")}
	}
	return nil
}

// oomKills is how many processes the kernel killed in the cgroup for memory.
func (c *memCgroup) oomKills(t *testing.T) int {
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
			k, _ := strconv.Atoi(strings.TrimSpace(n))
			return k
		}
	}
	return 0
}

// peak is the cgroup's (or, without one, the process's) peak memory in bytes.
func peak(t *testing.T, c *memCgroup, pid int) int64 {
	if c != nil {
		file := "memory.max_usage_in_bytes"
		if c.v2 {
			file = "memory.peak"
		}
		if b, err := os.ReadFile(filepath.Join(c.dir, file)); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// A burst of logins on a node with many cores (GOMAXPROCS 16, no CPU limit)
// and a container memory limit of 160 MiB: the issuer sizes its hashing
// concurrency by the memory limit it finds, so the burst gets answers (200,
// or 503 with Retry-After when the hashing queue is full), never an
// out-of-memory kill. Each argon2id hash at the OWASP parameters holds
// 19 MiB; sixteen at once used to take the process past the limit.
func TestLoginBurstUnderMemoryLimit(t *testing.T) {
	bin := sdktest.RequireEnv(t, "JOTGUARD_ISSUER_BIN")
	const limit = 160 << 20
	env := map[string]string{"GOMAXPROCS": "16", "JOTGUARD_ARGON2_MEMORY": "19456", "JOTGUARD_ARGON2_TIME": "2",
		"JOTGUARD_HASH_QUEUE_WAIT": "2s", "JOTGUARD_RATE_LIMITS": "off", "JOTGUARD_LOG_LEVEL": "info"}
	cg := newMemCgroup(t, limit)
	if cg != nil {
		// Start inside the cgroup, so the issuer finds its limit at start.
		wrapper := filepath.Join(t.TempDir(), "issuer-in-cgroup")
		script := fmt.Sprintf("#!/bin/sh\necho $$ > %q && exec %q \"$@\"\n", cg.procsFn, bin)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("JOTGUARD_ISSUER_BIN", wrapper)
		t.Logf("memory cgroup %s, limit %d MiB", cg.dir, limit>>20)
	} else {
		env["GOMEMLIMIT"] = strconv.Itoa(limit*9/10) + "B"
		t.Logf("no writable memory cgroup here: GOMEMLIMIT %d MiB, and the peak RSS must stay under %d MiB", limit*9/10>>20, limit>>20)
	}
	p := sdktest.StartIssuerProcess(t, env)
	email := "burst-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	const pw = "correct horse battery staple"
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)
	post := func(path string) (*http.Response, error) {
		return http.Post(p.URL+path, "application/json", strings.NewReader(body))
	}
	if res, err := post("/register"); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %v %v", res, err)
	}

	var ok, busy, other atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	for range 48 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				res, err := post("/login")
				switch {
				case err != nil:
					other.Add(1)
					return // the process is gone
				case res.StatusCode == http.StatusOK:
					ok.Add(1)
				case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
					busy.Add(1)
				default:
					other.Add(1)
				}
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	top := peak(t, cg, p.Pid())
	t.Logf("logins: %d ok, %d busy (503), %d other; peak memory %d MiB", ok.Load(), busy.Load(), other.Load(), top>>20)
	switch {
	case p.Exited():
		t.Fatalf("the issuer died during the burst (out of memory?); peak %d MiB of %d", top>>20, limit>>20)
	case cg != nil && cg.oomKills(t) > 0:
		t.Fatalf("%d out-of-memory kills in the cgroup", cg.oomKills(t))
	case cg == nil && top > limit:
		t.Fatalf("peak RSS %d MiB over the %d MiB limit", top>>20, limit>>20)
	case other.Load() > 0 || ok.Load() == 0:
		t.Fatalf("answers other than 200 or 503 with Retry-After: %d (and %d ok)", other.Load(), ok.Load())
	}
}
