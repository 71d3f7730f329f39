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

// Resign edits the signed part of the batch raw and signs it again with k:
// for batches SealBatch would refuse to make, signed with a trusted key.
func Resign(tb testing.TB, raw []byte, k BatchKey, edit func(signed []byte) []byte) []byte {
	tb.Helper()
	n := len(raw)
	sigLen := int(raw[n-2])<<8 | int(raw[n-1])
	return SignBatch(tb, edit(append([]byte(nil), raw[:n-2-sigLen]...)), k)
}

// SignBatch signs signed, a batch's signed part, with k.
func SignBatch(tb testing.TB, signed []byte, k BatchKey) []byte {
	tb.Helper()
	out, err := signBatch(signed, k)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// SealUnchecked is SealBatch without its checks: for batches no issuer
// writes (alg none, no events, an event of no scope).
func SealUnchecked(tb testing.TB, b Batch, k BatchKey) []byte {
	return SignBatch(tb, encodeBatch(b, k), k)
}

// EncodeBatch is the signed part SealBatch writes for b, unchecked.
func EncodeBatch(b Batch, k BatchKey) []byte { return encodeBatch(b, k) }
