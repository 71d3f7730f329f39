package sdk

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// tokenCache holds verified tokens until their exp. It is sharded by a
// seeded 64-bit hash of the token; an entry keeps the token itself, so a
// hash collision is a miss, never someone else's claims.
//
// It is bounded by its size over all shards, not per shard: a cache of N
// holds N tokens, however unevenly they hash (with a bound per shard, a
// cache of 10,000 held about 9,600 of 10,000 tokens, and missed 7% of them
// in rotation). When it is full, a put first drops the expired entries it
// meets in its shard, else an arbitrary one there (Go's map iteration order
// is randomised), or, in an empty shard, one of another shard: an
// approximate random eviction, which is enough for a cache whose entries
// expire within minutes anyway.
type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	max    int          // entries in all shards
	n      atomic.Int64 // entries in all shards now
}

const cacheShards = 64

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	token  string
	claims *Claims
	exp    int64 // unix nanos
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), max: max(1, size)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cacheEntry)
	}
	return c
}

// get returns a copy of the claims of token if it is cached and not expired.
func (c *tokenCache) get(token string, now time.Time) (*Claims, bool) {
	h := maphash.String(c.seed, token)
	s := &c.shards[h%cacheShards]
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	if !ok || e.token != token || now.UnixNano() >= e.exp {
		return nil, false
	}
	cp := *e.claims // callers may change their copy; slices are shared
	return &cp, true
}

// put caches a copy of claims until their exp.
func (c *tokenCache) put(token string, claims *Claims, now time.Time) {
	if claims.ExpiresAt == nil || !claims.ExpiresAt.After(now) {
		return // within the leeway only: get would miss it anyway
	}
	cp := *claims
	e := cacheEntry{token: token, claims: &cp, exp: claims.ExpiresAt.UnixNano()}
	h := maphash.String(c.seed, token)
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h]; !ok {
		if c.n.Load() >= int64(c.max) && !c.evict(s, now.UnixNano()) {
			for j := uint64(1); j < cacheShards; j++ { // s is empty: another shard gives one
				o := &c.shards[(h+j)%cacheShards]
				if o.mu.TryLock() { // never wait for a second lock while holding one
					done := c.evict(o, now.UnixNano())
					o.mu.Unlock()
					if done {
						break
					}
				}
			}
		}
		c.n.Add(1)
	}
	s.m[h] = e
}

// evict drops the expired entries among the first 8 of s it meets, or, if
// none was, one of those 8; false when s is empty. s is locked.
func (c *tokenCache) evict(s *cacheShard, now int64) bool {
	var victim uint64
	found, dropped, seen := false, false, 0
	for k, old := range s.m {
		switch {
		case old.exp <= now:
			delete(s.m, k)
			c.n.Add(-1)
			dropped = true
		case !found:
			victim, found = k, true
		}
		if seen++; seen == 8 {
			break
		}
	}
	if !dropped && found {
		delete(s.m, victim)
		c.n.Add(-1)
	}
	return dropped || found
}

// len counts the entries, for tests.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
