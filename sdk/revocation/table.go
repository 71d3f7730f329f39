package revocation

import "unsafe"

// slot is one entry of a table: key 0 marks an empty slot. It holds no Go
// pointer, so a table may live outside the Go heap.
type slot struct {
	key uint64 // Set.key, never 0
	at  uint32 // the event's instant in whole unix seconds (the cut-off for user events)
	evt uint32 // fingerprint of the last event applied
}

const slotSize = int(unsafe.Sizeof(slot{}))

// minSlots is the size of a shard's first table.
const minSlots = 8

// table is an open-addressing hash table with linear probing, a
// power-of-two capacity and at most 3/4 of its slots used. It has no
// tombstones: entries are removed by rebuilding the table (Set's sweep).
// The caller locks.
type table struct {
	slots  []slot // len is 0 or a power of two
	n      int    // slots used
	mapped bool   // slots come from allocSlots' mapping: freeSlots unmaps them
}

// find returns the index of k's slot, or of the empty slot where k would
// go; -1 when the table has no slots.
func (t *table) find(k uint64) int {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		if s := &t.slots[i]; s.key == k || s.key == 0 {
			return int(i)
		}
	}
}

// get returns k's slot.
func (t *table) get(k uint64) (slot, bool) {
	if i := t.find(k); i >= 0 && t.slots[i].key != 0 {
		return t.slots[i], true
	}
	return slot{}, false
}

// capFor is the smallest capacity that holds n entries at most 3/4 full; 0
// for none.
func capFor(n int) int {
	if n == 0 {
		return 0
	}
	c := minSlots
	for c*3 < n*4 {
		c *= 2
	}
	return c
}

// newTable returns an empty table of capacity c (capFor's).
func newTable(c int) table {
	if c == 0 {
		return table{}
	}
	s, mapped := allocSlots(c)
	return table{slots: s, mapped: mapped}
}

// put stores s in a slot that is known to be free of s.key, in a table
// with room for it.
func (t *table) put(s slot) {
	mask := uint64(len(t.slots) - 1)
	i := s.key & mask
	for t.slots[i].key != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = s
	t.n++
}

// set stores s under s.key. When the table must grow it returns the
// replaced table, for the caller to free once no reader can see it.
func (t *table) set(s slot) (old table) {
	i := t.find(s.key)
	switch {
	case i >= 0 && t.slots[i].key == s.key:
		t.slots[i] = s
	case (t.n+1)*4 > len(t.slots)*3: // grow ×2 (or to minSlots)
		old = *t
		*t = old.rebuild(capFor(t.n+1), func(slot) bool { return true })
		t.put(s)
	default:
		t.slots[i] = s
		t.n++
	}
	return old
}

// rebuild returns a new table of capacity c holding t's slots that keep
// reports true. c must hold them.
func (t *table) rebuild(c int, keep func(slot) bool) table {
	nt := newTable(c)
	for _, s := range t.slots {
		if s.key != 0 && keep(s) {
			nt.put(s)
		}
	}
	return nt
}

// free releases t's slots; t must no longer be reachable by a reader.
func (t *table) free() {
	if t.slots != nil {
		freeSlots(t.slots, t.mapped)
	}
	*t = table{}
}

// bytes is the memory t's slots take.
func (t *table) bytes() int64 { return int64(len(t.slots) * slotSize) }
