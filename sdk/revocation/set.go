package revocation

import (
	"hash/maphash"
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
// Representation: one map entry per revoked session, user or token, keyed
// by a seeded 64-bit hash of kind|iss|id, holding the event's second and a
// 32-bit fingerprint of its jti: 16 bytes a slot, about 20 to 40 bytes an
// entry with the map's own overhead. No strings are kept. Two consequences,
// both documented trade-offs:
//   - two different ids whose hashes collide share an entry, so a token
//     may be wrongly reported revoked with probability about n/2^64 per
//     lookup (5e-14 at a million entries), never wrongly accepted;
//   - dedupe by jti is exact for a redelivered event as long as no newer
//     event replaced the entry of the same session, user or token, which is
//     all it has to be: applying an event twice changes nothing, the
//     duplicate only counts as new.
//
// Entries are forgotten retention (rounded up to the second, plus one
// second) after the event's timestamp; expired ones no longer count in
// Revoked and are swept lazily by Add and by Sweep, so memory is bounded by
// the events of one retention window.
type Set struct {
	retention int64 // seconds, rounded up, + 1
	now       func() time.Time
	seed      maphash.Seed
	shards    [setShards]setShard
	cursor    atomic.Uint32 // round-robin sweep
}

const setShards = 64

type setShard struct {
	mu        sync.RWMutex
	m         map[uint64]setEntry
	lastSweep int64
	_         [32]byte
}

// setEntry: the event's instant in whole unix seconds (the cut-off for user
// events) and the fingerprint of the last event applied.
type setEntry struct {
	at  uint32
	evt uint32
}

// Kinds of key.
const (
	kindSession = 's'
	kindUser    = 'u'
	kindToken   = 't'
)

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
	}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]setEntry)
	}
	return s
}

func (s *Set) key(kind byte, iss, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteByte(kind)
	h.WriteString(iss)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

func (s *Set) shard(k uint64) *setShard { return &s.shards[k>>(64-6)] }

// Add applies e. It returns false when e is a duplicate (its jti was
// applied already), already past its retention, or has no scope.
func (s *Set) Add(e Event) bool {
	now := s.now().Unix()
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
	old, ok := sh.m[k]
	live := ok && int64(old.at)+s.retention > now
	dup := live && old.evt == evt
	if !live || uint32(at) >= old.at {
		sh.m[k] = setEntry{at: uint32(at), evt: evt}
	}
	sweep := now-sh.lastSweep >= s.sweepEvery()
	sh.mu.Unlock()
	if sweep {
		s.sweepShard(sh, now)
	}
	// and one more, so shards that get no events are swept too
	if other := &s.shards[s.cursor.Add(1)%setShards]; other != sh {
		other.mu.RLock()
		due := now-other.lastSweep >= s.sweepEvery()
		other.mu.RUnlock()
		if due {
			s.sweepShard(other, now)
		}
	}
	return !dup
}

func (s *Set) sweepEvery() int64 { return max(1, s.retention/4) }

func (s *Set) sweepShard(sh *setShard, now int64) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.lastSweep = now
	n := 0
	for k, e := range sh.m {
		if int64(e.at)+s.retention <= now {
			delete(sh.m, k)
			n++
		}
	}
	return n
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
func (s *Set) lookup(k uint64, now int64) (setEntry, bool) {
	sh := s.shard(k)
	sh.mu.RLock()
	e, ok := sh.m[k]
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
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
