package revocation

import (
	"runtime"
	"testing"
	"time"
)

// Keys with the same low bits probe one run of slots, across the end of
// the array and back to its start.
func TestTableProbing(t *testing.T) {
	var tb table
	const c = 16 // capFor(12)
	keys := make([]uint64, 0, 12)
	for i := range uint64(12) {
		keys = append(keys, (i+1)<<32|(c-2)) // all start at slot 14
	}
	for i, k := range keys {
		if old := tb.set(slot{key: k, at: uint32(i)}); old.slots != nil {
			old.free()
		}
	}
	if len(tb.slots) != c || tb.n != len(keys) {
		t.Fatalf("capacity %d, n %d; want %d, %d", len(tb.slots), tb.n, c, len(keys))
	}
	for i, k := range keys {
		if s, ok := tb.get(k); !ok || s.at != uint32(i) {
			t.Fatalf("get(%#x) = %+v, %v", k, s, ok)
		}
	}
	if _, ok := tb.get(99<<32 | (c - 2)); ok {
		t.Fatal("found a key never set")
	}
	tb.set(slot{key: keys[11], at: 101}) // an update: no growth
	if s, _ := tb.get(keys[11]); s.at != 101 || tb.n != len(keys) {
		t.Fatalf("update: %+v, n %d", s, tb.n)
	}
	// one more grows ×2
	old := tb.set(slot{key: 1, at: 1})
	if len(old.slots) != c || len(tb.slots) != 2*c || tb.n != len(keys)+1 {
		t.Fatalf("growth: old %d, new %d, n %d", len(old.slots), len(tb.slots), tb.n)
	}
	old.free()
	// keep every other one: the rebuild is sized for what stays
	nt := tb.rebuild(capFor(6), func(s slot) bool { return s.at%2 == 0 && s.key != 1 })
	tb.free()
	if len(nt.slots) != 8 || nt.n != 6 {
		t.Fatalf("rebuild: capacity %d, n %d; want 8, 6", len(nt.slots), nt.n)
	}
	for i, k := range keys {
		if _, ok := nt.get(k); ok != (i%2 == 0) {
			t.Fatalf("after rebuild get(key %d) = %v", i, ok)
		}
	}
	nt.free()
	if nt.slots != nil || nt.n != 0 {
		t.Fatal("free left slots")
	}
	var empty table
	if _, ok := empty.get(5); ok || empty.find(5) != -1 {
		t.Fatal("an empty table found something")
	}
}

func TestCapFor(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 0}, {1, 8}, {6, 8}, {7, 16}, {12, 16}, {13, 32},
		{15625, 32768}, {24576, 32768}, {24577, 65536}} {
		if got := capFor(tt.n); got != tt.want {
			t.Errorf("capFor(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// A Set dropped without Sweep gives its mappings back once collected.
func TestSetReleasesMappings(t *testing.T) {
	base := mappedBytes.Load()
	func() {
		t0 := time.Now()
		s := NewSet(time.Hour, nil)
		for i := range 50_000 {
			id := string(rune('a'+i%26)) + time.Duration(i).String()
			s.Add(Event{ID: id, Issuer: "https://issuer.example", SessionID: id, At: t0})
		}
		if mappedBytes.Load() <= base {
			t.Skip("tables are not mapped on this platform")
		}
	}()
	for i := 0; i < 200 && mappedBytes.Load() > base; i++ {
		runtime.GC() // the cleanup runs after a cycle finds the Set unreachable
		time.Sleep(10 * time.Millisecond)
	}
	if got := mappedBytes.Load(); got > base {
		t.Fatalf("%d bytes still mapped after the Set was collected, %d before it", got, base)
	}
}
