package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// Memory is scenario 7.
type Memory struct {
	Idle, Loaded int64 // verifier RSS, bytes
	Before       int64 // RSS after the load, before the first injection
	Entries      []int // live revocation entries injected (cumulative)
	RSS          []int64
	SetSize      []int // the verifier's own count, from /metrics
	InProc       []SetMem
	LoadResult   Result
}

// SetMem is the memory a revocation.Set takes, measured in the bench: its
// Go heap, and its slot tables, which on Linux are mmap'd outside the heap
// (revocation.Set.Bytes).
type SetMem struct {
	Entries    int
	HeapBytes  int64
	TableBytes int64
}

func (m SetMem) PerEntry() float64 { return float64(m.HeapBytes+m.TableBytes) / float64(m.Entries) }

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// setMemory fills a revocation.Set with n session events and measures the
// heap growth; the events are built before the baseline.
func setMemory(n int) SetMem {
	evs := make([]revocation.Event, n)
	now := time.Now()
	for i := range evs {
		evs[i] = revocation.Event{ID: fmt.Sprintf("evt-%d", i), Issuer: "http://127.0.0.1:8080",
			Subject: fmt.Sprintf("user-%d", i%50000), SessionID: fmt.Sprintf("sid-%d", i), At: now}
	}
	debug.FreeOSMemory()
	base := heapInUse()
	set := revocation.NewSet(5*time.Minute+30*time.Second, nil)
	for _, e := range evs {
		set.Add(e)
	}
	used := heapInUse() - base
	runtime.KeepAlive(set)
	runtime.KeepAlive(evs)
	return SetMem{Entries: set.Len(), HeapBytes: used, TableBytes: set.Bytes()}
}

// metric reads one gauge from a Prometheus text endpoint; -1 if absent.
func metric(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(name):]), 64)
			return v
		}
	}
	return -1
}

// inject signs n session-revocation SETs with iss's key and writes them to
// the topic.
func inject(ctx context.Context, iss *sdktest.Issuer, brokers, topic string, from, n int) error {
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Topic: topic,
		Balancer: &kafka.Hash{}, BatchSize: 1000, BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafka.RequireOne, AllowAutoTopicCreation: false}
	defer w.Close()
	const batch = 2000
	workers := runtime.NumCPU()
	for lo := from; lo < from+n; lo += batch {
		hi := min(lo+batch, from+n)
		msgs := make([]kafka.Message, hi-lo)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Go(func() {
				for i := lo + k; i < hi; i += workers {
					sub := fmt.Sprintf("memuser-%d", i%50000)
					v := iss.RevocationSET(nil, revocation.Event{Subject: sub, SessionID: fmt.Sprintf("memsid-%d", i),
						Reason: revocation.ReasonLogout, Initiator: "user"})
					msgs[i-lo] = kafka.Message{Key: []byte(sub), Value: v,
						Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/secevent+jwt")}}}
				}
			})
		}
		wg.Wait()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
	}
	return nil
}

// memoryScenario is 7: a revocation.Set in-process at each step, then
// bin/verifier's RSS idle, under load and with the entries injected.
func (b *bench) memoryScenario(ctx context.Context, st *stack) {
	m := &Memory{}
	for _, k := range b.plan.memSteps {
		sm := setMemory(k)
		b.log.Printf("revocation.Set in-process: %d entries, %.1f B/entry", sm.Entries, sm.PerEntry())
		m.InProc = append(m.InProc, sm)
	}
	if st.verifier != nil {
		if err := b.verifierMemory(ctx, st.ds, m); err != nil {
			b.note("verifier memory: %v", err)
		}
	}
	b.rep.Mem = m
}

// verifierMemory measures a verifier of its own, on a JWKS the bench holds
// the key of, so that it can sign revocation events the verifier accepts.
func (b *bench) verifierMemory(ctx context.Context, ds *Devstack, m *Memory) error {
	// Other verifiers would spend CPU rejecting these events: stop them.
	b.procs.StopNamed("verifier")
	iss, err := sdktest.StartIssuer()
	if err != nil {
		return err
	}
	defer iss.Close()
	v, err := b.servers.Verifier(ctx, "verifier-mem", b.cfg.ServerCPUs, ds.Env, iss.URL, "")
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	m.Idle = v.RSS()
	b.log.Printf("verifier RSS idle %.1f MiB", float64(m.Idle)/(1<<20))
	if err := b.verifierUnderLoad(v, iss, m); err != nil {
		return err
	}
	time.Sleep(time.Second)
	m.Before = v.RSS()
	return b.injectSteps(ctx, v, iss, ds, m)
}

// verifierUnderLoad records the verifier's peak RSS under forward-auth
// load at c=64.
func (b *bench) verifierUnderLoad(v *Proc, iss *sdktest.Issuer, m *Memory) error {
	tok := iss.Mint(nil, iss.Claims("mem-user"))
	var peak int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				peak = max(peak, v.RSS())
			}
		}
	})
	var err error
	m.LoadResult, err = b.load.Run("verifier under load", "http://"+v.Addr+"/authz/forward-auth", 64, b.plan.d,
		"Authorization: Bearer "+tok, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /", "X-Forwarded-Host: app.example")
	close(done)
	wg.Wait()
	if err != nil {
		return err
	}
	m.Loaded = peak
	b.log.Printf("verifier RSS under load (c=64) %.1f MiB", float64(m.Loaded)/(1<<20))
	return nil
}

// injectSteps injects revocation events up to each step's count, and
// records the verifier's RSS once its set holds them. A step of a million
// is left out once the run is past 6 minutes, unless --full-memory.
func (b *bench) injectSteps(ctx context.Context, v *Proc, iss *sdktest.Issuer, ds *Devstack, m *Memory) error {
	metrics := "http://" + v.Addr + "/metrics"
	have := 0
	for _, k := range b.plan.memSteps {
		if el := b.log.Elapsed(); k >= 1_000_000 && el > 6*time.Minute && !b.cfg.FullMemory {
			b.note("verifier memory: the %d-entry step was skipped to keep make bench under 10 minutes (%s elapsed); the in-process revocation.Set figure covers it; run it alone with `bin/bench --skip 1,4,5,6 --full-memory`", k, el.Round(time.Second))
			break
		}
		t0 := time.Now()
		if err := inject(ctx, iss, ds.Env["JOTGUARD_KAFKA_BROKERS"], ds.Env["JOTGUARD_REVOCATION_TOPIC"], have, k-have); err != nil {
			return err
		}
		have = k
		got := -1.0
		for time.Since(t0) < 5*time.Minute {
			if got = metric(metrics, "jotguard_verifier_revocation_set_size"); got >= float64(k) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(time.Second)
		rss := v.RSS()
		m.Entries, m.RSS, m.SetSize = append(m.Entries, k), append(m.RSS, rss), append(m.SetSize, int(got))
		b.log.Printf("verifier with %d entries injected (set size %v): RSS %.1f MiB, in %s", k, got, float64(rss)/(1<<20), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}
