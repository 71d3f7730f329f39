package sdk

import (
	"hash/maphash"
	"sync"
	"time"
)

// tokenCache holds verified tokens until their exp. It is sharded by a
// seeded 64-bit hash of the token; an entry keeps the token itself, so a
// hash collision is a miss, never someone else's claims.
//
// It is bounded: a full shard first drops expired entries it meets, then an
// arbitrary one (Go's map iteration order is randomised): an approximate
// random eviction, which is enough for a cache whose entries expire within
// minutes anyway.
type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	max    int // per shard
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
	c := &tokenCache{seed: maphash.MakeSeed(), max: max(1, (size+cacheShards-1)/cacheShards)}
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
	if _, ok := s.m[h]; !ok && len(s.m) >= c.max {
		var victim uint64
		seen := 0
		for k, old := range s.m {
			switch {
			case old.exp <= now.UnixNano():
				delete(s.m, k)
			case seen == 0:
				victim = k
			}
			if seen++; seen == 8 {
				break
			}
		}
		if len(s.m) >= c.max {
			delete(s.m, victim)
		}
	}
	s.m[h] = e
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
