package revocation

import (
	"math"
	"testing"
)

// OffHeapBytes is the part of s.Bytes() that is mapped outside the Go heap.
func OffHeapBytes(s *Set) int64 {
	var n int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		if sh.tab.mapped {
			n += sh.tab.bytes()
		}
		sh.mu.RUnlock()
	}
	return n
}

// MappedBytes is the memory mapped by the tables of every Set.
func MappedBytes() int64 { return mappedBytes.Load() }

// ForceHeap makes new tables come from the Go heap until tb ends, so that
// the race detector, which does not see mapped memory, checks every slot
// access.
func ForceHeap(tb testing.TB) {
	old := mmapMin
	mmapMin = math.MaxInt
	tb.Cleanup(func() { mmapMin = old })
}
