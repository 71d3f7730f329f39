//go:build unix

package revocation

import (
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// mmapMin: smaller tables come from the Go heap, so the many tiny Sets of
// tests and small services take no mapping each.
var mmapMin = max(4<<10, os.Getpagesize())

// mappedBytes is the memory of the tables mapped now, all Sets together.
var mappedBytes atomic.Int64

// allocSlots returns n zeroed slots. Tables of mmapMin bytes and more are
// anonymous private mappings, outside the Go heap: the garbage collector
// neither scans them (a slot holds no pointer) nor counts them towards its
// heap goal, and freeSlots gives them back to the system at once. If the
// mapping fails, the slots come from the heap.
func allocSlots(n int) (s []slot, mapped bool) {
	size := n * slotSize
	if size < mmapMin {
		return make([]slot, n), false
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]slot, n), false
	}
	mappedBytes.Add(int64(size))
	return unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(b))), n), true
}

// freeSlots releases s, which allocSlots returned.
func freeSlots(s []slot, mapped bool) {
	if !mapped {
		return // the garbage collector's
	}
	size := len(s) * slotSize
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), size)
	if err := syscall.Munmap(b); err != nil {
		panic("revocation: munmap: " + err.Error()) // not a mapping of ours: a bug
	}
	mappedBytes.Add(-int64(size))
}
