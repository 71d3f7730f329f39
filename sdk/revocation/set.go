package revocation

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jotguard/jotguard/sdk"
)

var _ sdk.RevocationChecker = (*Set)(nil)

// Set is the in-memory revocation state a verifier checks tokens against.
// It is safe for concurrent Add (one goroutine per partition) and Revoked
// (every request).
//
// Representation: one 16-byte slot per revoked session, user or token, in
// 64 open-addressing hash tables (linear probing, at most 3/4 full). A slot
// holds a seeded 64-bit hash of kind|iss|id, the event's second and a
// 32-bit fingerprint of its jti. No strings are kept. Two consequences, both
// documented trade-offs:
//   - two different ids whose hashes collide share an entry, so a token
//     may be wrongly reported revoked with probability about n/2^64 per
//     lookup (5e-14 at a million entries), never wrongly accepted; a hash
//     of 0 marks an empty slot, so it is stored as 1, which adds one more
//     colliding value out of 2^64: nothing measurable;
//   - dedupe by jti is exact for a redelivered event as long as no newer
//     event replaced the entry of the same session, user or token, which is
//     all it has to be: applying an event twice changes nothing, the
//     duplicate only counts as new.
//
// Memory: on unix the tables of 4 KiB and more are anonymous mappings
// outside the Go heap, so they neither count towards the garbage
// collector's heap goal (GOGC would let the heap grow to twice a table held
// there) nor leave old tables behind after a growth: a replaced table is
// unmapped at once. That is 16 / load bytes of RSS an entry, the load being
// 3/8 to 3/4: 34 bytes at a million entries, 42 at 100 000 (see Bytes). A
// Set that becomes unreachable unmaps its tables.
//
// Entries are forgotten retention (rounded up to the second, plus one
// second) after the event's timestamp; expired ones no longer count in
// Revoked and are swept lazily by Add and by Sweep, which rebuild a shard's
// table from its live entries (so memory shrinks after a burst). Memory is
// bounded by the events of one retention window.
type Set struct {
	retention int64 // seconds, rounded up, + 1
	now       func() time.Time
	seed      maphash.Seed
	shards    *[setShards]setShard // apart from Set, for the cleanup that frees them
	cursor    atomic.Uint32        // round-robin sweep
}

const setShards = 64

type setShard struct {
	mu        sync.RWMutex
	tab       table
	lastSweep int64
	_         [64]byte // keep two shards' locks off one cache line
}

// Kinds of key.
const (
	kindSession = 's'
	kindUser    = 'u'
	kindToken   = 't'
)

// Retention is how long after its timestamp the Set keeps an event (at
// least the retention NewSet was given).
func (s *Set) Retention() time.Duration { return time.Duration(s.retention-1) * time.Second }

// NewSet returns an empty Set that keeps an event for retention after its
// timestamp: the longest access-token lifetime plus the verifiers' leeway.
// now is the clock (nil: time.Now).
func NewSet(retention time.Duration, now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	s := &Set{
		retention: int64((retention+time.Second-1)/time.Second) + 1,
		now:       now,
		seed:      maphash.MakeSeed(),
		shards:    new([setShards]setShard),
	}
	// The cleanup gets the shards, not s: it runs once s is unreachable.
	runtime.AddCleanup(s, freeShards, s.shards)
	return s
}

// freeShards releases the tables of a Set that is gone. It locks each
// shard, so a method still running on one finishes first.
func freeShards(shards *[setShards]setShard) {
	for i := range shards {
		sh := &shards[i]
		sh.mu.Lock()
		sh.tab.free()
		sh.mu.Unlock()
	}
}

// key hashes kind|iss|id; 0 is mapped to 1, as 0 marks an empty slot.
func (s *Set) key(kind byte, iss, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteByte(kind)
	h.WriteString(iss)
	h.WriteByte(0)
	h.WriteString(id)
	return max(h.Sum64(), 1)
}

// shard picks by the top bits; the tables index by the low ones.
func (s *Set) shard(k uint64) *setShard { return &s.shards[k>>(64-6)] }

// Add applies e. It returns false when e is a duplicate (its jti was
// applied already), already past its retention, or has no scope.
func (s *Set) Add(e Event) bool {
	now := s.now().Unix()
	added := s.add(e, now)
	s.sweepAnother(now)
	return added
}

// AddAll applies events as Add does, with one reading of the clock, and
// returns how many of them were new: what a feed does with a batch.
func (s *Set) AddAll(events []Event) int {
	now := s.now().Unix()
	n := 0
	for _, e := range events {
		if s.add(e, now) {
			n++
		}
	}
	s.sweepAnother(now)
	return n
}

// add applies e at now, and sweeps e's shard when that is due.
func (s *Set) add(e Event, now int64) bool {
	at := e.At.Unix()
	if at <= 0 || at > int64(^uint32(0)) || at+s.retention <= now || e.Issuer == "" {
		return false
	}
	var k uint64
	switch {
	case e.TokenID != "":
		k = s.key(kindToken, e.Issuer, e.TokenID)
	case e.SessionID != "":
		k = s.key(kindSession, e.Issuer, e.SessionID)
	case e.Subject != "":
		k = s.key(kindUser, e.Issuer, e.Subject)
	default:
		return false
	}
	evt := uint32(s.key('e', e.Issuer, e.ID))
	sh := s.shard(k)
	sh.mu.Lock()
	old, ok := sh.tab.get(k)
	live := ok && int64(old.at)+s.retention > now
	dup := live && old.evt == evt
	var grown table
	if !live || uint32(at) >= old.at {
		grown = sh.tab.set(slot{key: k, at: uint32(at), evt: evt})
	}
	sweep := now-sh.lastSweep >= s.sweepEvery()
	sh.mu.Unlock()
	grown.free() // no reader can reach it: they look under the lock
	if sweep {
		s.sweepShard(sh, now)
	}
	return !dup
}

// sweepAnother sweeps the next shard in turn when that is due, so that
// shards that get no events are swept too.
func (s *Set) sweepAnother(now int64) {
	other := &s.shards[s.cursor.Add(1)%setShards]
	other.mu.RLock()
	due := now-other.lastSweep >= s.sweepEvery()
	other.mu.RUnlock()
	if due {
		s.sweepShard(other, now)
	}
}

func (s *Set) sweepEvery() int64 { return max(1, s.retention/4) }

// sweepShard drops sh's expired entries by rebuilding its table from the
// live ones, sized for them, and returns how many it dropped.
func (s *Set) sweepShard(sh *setShard, now int64) int {
	live := func(e slot) bool { return int64(e.at)+s.retention > now }
	sh.mu.Lock()
	sh.lastSweep = now
	n := 0
	for _, e := range sh.tab.slots {
		if e.key != 0 && live(e) {
			n++
		}
	}
	dropped := sh.tab.n - n
	if dropped == 0 {
		sh.mu.Unlock()
		return 0
	}
	old := sh.tab
	sh.tab = old.rebuild(capFor(n), live)
	sh.mu.Unlock()
	old.free() // swapped under the lock: no reader can see it
	return dropped
}

// Sweep forgets every expired entry now and returns how many it dropped.
// Add sweeps lazily; call Sweep for memory to shrink while no event comes.
func (s *Set) Sweep() int {
	now := s.now().Unix()
	n := 0
	for i := range s.shards {
		n += s.sweepShard(&s.shards[i], now)
	}
	return n
}

// lookup returns the live entry for k.
func (s *Set) lookup(k uint64, now int64) (slot, bool) {
	sh := s.shard(k)
	sh.mu.RLock()
	e, ok := sh.tab.get(k)
	sh.mu.RUnlock()
	return e, ok && int64(e.at)+s.retention > now
}

// Revoked implements sdk.RevocationChecker; it never fails. A token is
// revoked when its session or its jti was, or when its user was at or
// after the token's iat second (see the package doc).
func (s *Set) Revoked(c *sdk.Claims) (bool, error) {
	if c == nil {
		return false, nil
	}
	now := s.now().Unix()
	if c.SessionID != "" {
		if _, ok := s.lookup(s.key(kindSession, c.Issuer, c.SessionID), now); ok {
			return true, nil
		}
	}
	if c.ID != "" {
		if _, ok := s.lookup(s.key(kindToken, c.Issuer, c.ID), now); ok {
			return true, nil
		}
	}
	if c.Subject != "" {
		if e, ok := s.lookup(s.key(kindUser, c.Issuer, c.Subject), now); ok {
			if c.IssuedAt == nil || c.IssuedAt.Unix() <= int64(e.at) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Len is the number of entries held, expired ones not swept yet included.
func (s *Set) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += sh.tab.n
		sh.mu.RUnlock()
	}
	return n
}

// Bytes is the memory the entries' tables take, 16 bytes a slot, on the Go
// heap or (the tables of 4 KiB and more, on unix) outside it: what a
// verifier's RSS grows by for them. It is about 16 / load bytes an entry,
// load being 3/8 to 3/4 (expired entries not swept yet included).
func (s *Set) Bytes() int64 {
	var n int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += sh.tab.bytes()
		sh.mu.RUnlock()
	}
	return n
}
