package revocation_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
)

const iss = "https://issuer.example"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func token(sub, sid, jti string, iat time.Time) *sdk.Claims {
	return &sdk.Claims{SessionID: sid, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: iss, Subject: sub, ID: jti, IssuedAt: jwt.NewNumericDate(iat)}}
}

func TestSetSemantics(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	logout := t0.Add(500 * time.Millisecond) // mid-second
	s := revocation.NewSet(6*time.Minute, func() time.Time { return t0.Add(time.Second) })
	for _, e := range []revocation.Event{
		{ID: "e-sess", Issuer: iss, Subject: "alice", SessionID: "s-old", At: logout},
		{ID: "e-user", Issuer: iss, Subject: "bob", At: logout},
		{ID: "e-tok", Issuer: iss, TokenID: "jti-dead", At: logout},
	} {
		if !s.Add(e) {
			t.Fatalf("Add(%s) = false for a new event", e.ID)
		}
	}
	tests := []struct {
		name string
		c    *sdk.Claims
		want bool
	}{
		{"session event: that sid", token("alice", "s-old", "j1", t0.Add(-time.Minute)), true},
		{"session event: that sid, issued after", token("alice", "s-old", "j2", t0.Add(time.Minute)), true},
		{"session event: another sid of the user", token("alice", "s-other", "j3", t0.Add(-time.Minute)), false},
		// a login in the same second as a global logout: new sid, accepted
		{"session event: new session in the same second", token("alice", "s-new", "j4", logout.Add(300*time.Millisecond)), false},
		{"session event: other issuer", &sdk.Claims{SessionID: "s-old", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://other.example", Subject: "alice", ID: "j5", IssuedAt: jwt.NewNumericDate(t0)}}, false},
		{"user event: issued a second before", token("bob", "s1", "j6", t0.Add(-time.Second)), true},
		{"user event: issued in the same second (cut-off)", token("bob", "s2", "j7", t0), true},
		{"user event: issued the second after", token("bob", "s3", "j8", t0.Add(time.Second)), false},
		{"user event: other user", token("carol", "s4", "j9", t0.Add(-time.Minute)), false},
		{"token event: that jti", token("dave", "s5", "jti-dead", t0.Add(-time.Minute)), true},
		{"token event: another jti", token("dave", "s5", "jti-live", t0.Add(-time.Minute)), false},
		{"nil claims", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Revoked(tt.c)
			if err != nil || got != tt.want {
				t.Fatalf("Revoked() = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestSetDedupeAndExpiry(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &clock{t: t0}
	s := revocation.NewSet(6*time.Minute, clk.Now)
	e := revocation.Event{ID: "e1", Issuer: iss, Subject: "alice", SessionID: "s1", At: t0}
	if !s.Add(e) {
		t.Fatal("first Add = false")
	}
	if s.Add(e) {
		t.Fatal("Add of the same jti again = true, want false (duplicate)")
	}
	if !s.Add(revocation.Event{ID: "e2", Issuer: iss, Subject: "alice", SessionID: "s1", At: t0.Add(time.Second)}) {
		t.Fatal("Add of a new jti for the same session = false")
	}
	if s.Add(revocation.Event{ID: "old", Issuer: iss, Subject: "bob", At: t0.Add(-7 * time.Minute)}) {
		t.Fatal("Add of an event past its retention = true, want false")
	}
	if s.Add(revocation.Event{ID: "noscope", Issuer: iss, At: t0}) {
		t.Fatal("Add of an event without subject, session or token = true")
	}
	c := token("alice", "s1", "j", t0.Add(-time.Minute))
	if r, _ := s.Revoked(c); !r {
		t.Fatal("not revoked right after the event")
	}
	clk.Add(5 * time.Minute)
	if r, _ := s.Revoked(c); !r {
		t.Fatal("forgotten before its retention")
	}
	clk.Add(3 * time.Minute) // past t0+1s + 6 min (+1 s rounding)
	if r, _ := s.Revoked(c); r {
		t.Fatal("still revoked after its retention")
	}
	if n := s.Sweep(); n != 1 || s.Len() != 0 {
		t.Fatalf("Sweep() = %d, Len() = %d; want 1, 0", n, s.Len())
	}
	// a redelivery once forgotten is past its retention too
	if s.Add(e) {
		t.Fatal("Add of a forgotten event = true")
	}
}

func TestSetSweepsLazily(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &clock{t: t0}
	s := revocation.NewSet(time.Minute, clk.Now)
	for i := range 1000 {
		s.Add(revocation.Event{ID: fmt.Sprint("a", i), Issuer: iss, SessionID: fmt.Sprint("s", i), Subject: "u", At: t0})
	}
	clk.Add(10 * time.Minute)
	for i := range 1000 { // new events only: the old ones must go without Sweep
		s.Add(revocation.Event{ID: fmt.Sprint("b", i), Issuer: iss, SessionID: fmt.Sprint("t", i), Subject: "u", At: clk.Now()})
	}
	if n := s.Len(); n > 1100 {
		t.Fatalf("Len() = %d after the first 1000 expired, want about 1000", n)
	}
}

func TestSetConcurrent(t *testing.T) {
	s := revocation.NewSet(time.Minute, nil)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				s.Add(revocation.Event{ID: fmt.Sprint(p, "-", i), Issuer: iss, Subject: "u", SessionID: fmt.Sprint(p, "-", i), At: time.Now()})
			}
		})
		wg.Go(func() {
			for i := range 2000 {
				_, _ = s.Revoked(token("u", fmt.Sprint(p, "-", i), "j", time.Now()))
			}
		})
	}
	wg.Wait()
	if s.Len() != 8000 {
		t.Fatalf("Len() = %d, want 8000", s.Len())
	}
	if r, _ := s.Revoked(token("u", "3-1999", "j", time.Now())); !r {
		t.Fatal("an added session is not revoked")
	}
}

func fill(s *revocation.Set, n int, at time.Time) {
	for i := range n {
		id := fmt.Sprint(i)
		s.Add(revocation.Event{ID: "e" + id, Issuer: iss, Subject: "user-" + id, SessionID: "sess-" + id, At: at})
	}
}

func benchmarkSetRevoked(b *testing.B, n int) {
	s := revocation.NewSet(time.Hour, nil)
	fill(s, n, time.Now())
	hit := token("user-7", "sess-7", "jti-x", time.Now())
	miss := token("user-x", "sess-x", "jti-x", time.Now())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := miss // the common case: all three lookups
			if i++; i%16 == 0 {
				c = hit
			}
			_, _ = s.Revoked(c)
		}
	})
}

func BenchmarkSetRevoked10K(b *testing.B) { benchmarkSetRevoked(b, 10_000) }
func BenchmarkSetRevoked1M(b *testing.B)  { benchmarkSetRevoked(b, 1_000_000) }

// BenchmarkSetMemory reports what a Set holds per entry: B/entry is the Go
// heap it grows by plus its tables mapped outside the heap, RSS-B/entry the
// process's resident memory growth (Linux), which also counts the heap's
// headroom: with GOGC=100 the heap may reach twice the live heap, garbage
// of the adds included, before a collection returns to the live size. The
// heap's free pages are given back to the system before each fill, so each
// run starts like a fresh process; so RSS-B/entry also counts the heap the
// fill's garbage touches up to the runtime's minimum heap goal (4 MiB),
// about 20 B/entry at 100K, nothing at 1M, and not per entry in a verifier,
// whose heap is past that minimum anyway.
func BenchmarkSetMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dK", n/1000), func(b *testing.B) {
			var m setMem
			for range b.N {
				m = measureSet(n)
			}
			b.ReportMetric(m.perEntry, "B/entry")
			if m.rssPerEntry >= 0 {
				b.ReportMetric(m.rssPerEntry, "RSS-B/entry")
			}
		})
	}
}

type setMem struct {
	perEntry    float64 // (heap growth + mapped tables) / entries
	rssPerEntry float64 // RSS growth / entries; -1 without /proc/self/statm
}

func measureSet(n int) setMem {
	// Sets dropped before (by other benchmarks) unmap in a cleanup, after
	// a GC: wait for that, or their release would count against this one.
	for i := 0; i < 100 && revocation.MappedBytes() > 0; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	var before, after runtime.MemStats
	debug.FreeOSMemory() // GC, and free heap pages back to the system: each run starts alike
	runtime.ReadMemStats(&before)
	rss0 := rss()
	s := revocation.NewSet(time.Hour, nil)
	fill(s, n, time.Now())
	runtime.GC()
	runtime.ReadMemStats(&after)
	rss1 := rss()
	off := revocation.OffHeapBytes(s)
	runtime.KeepAlive(s)
	if s.Len() != n {
		panic(fmt.Sprint("Len ", s.Len()))
	}
	m := setMem{perEntry: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)+off) / float64(n), rssPerEntry: -1}
	if rss0 > 0 && rss1 > 0 {
		m.rssPerEntry = float64(rss1-rss0) / float64(n)
	}
	return m
}

// rss is the process's resident set in bytes, from /proc/self/statm; -1
// where there is none.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

func TestSetMemoryPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 1M entries")
	}
	m := measureSet(1_000_000)
	t.Logf("%.1f B/entry at 1M entries (RSS: %.1f)", m.perEntry, m.rssPerEntry)
	if m.perEntry > 48 {
		t.Fatalf("%.1f B/entry, the budget is 48", m.perEntry)
	}
}
