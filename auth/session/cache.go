package session

import (
	"sync"
	"time"
)

// verifyCache remembers successful verifications by SHA-256 of the token,
// so a request carrying a token verified moments ago skips the signature
// check. It holds only what the signature proved; revocation (the session
// row) is the caller's check and is never cached here.
type verifyCache struct {
	mu       sync.RWMutex
	capacity int
	entries  map[[32]byte]cacheEntry
}

type cacheEntry struct {
	claims Claims
	until  time.Time
}

// evictScan bounds the work of one eviction when the cache is full.
const evictScan = 64

func newVerifyCache(capacity int) *verifyCache {
	return &verifyCache{capacity: capacity, entries: make(map[[32]byte]cacheEntry, min(capacity, 1024))}
}

func (c *verifyCache) get(key [32]byte, now time.Time) (Claims, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Claims{}, false
	}
	return e.claims, true // shared: callers that hand it on clone it
}

func (c *verifyCache) put(key [32]byte, claims Claims, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.capacity {
		// Drop expired entries among a few arbitrary ones (map order is
		// unspecified); if none had expired, drop the first seen.
		var first [32]byte
		n, dropped := 0, false
		for k, e := range c.entries {
			if n == 0 {
				first = k
			}
			if !now.Before(e.until) {
				delete(c.entries, k)
				dropped = true
			}
			if n++; n >= evictScan {
				break
			}
		}
		if !dropped {
			delete(c.entries, first)
		}
	}
	c.entries[key] = cacheEntry{claims: claims.clone(), until: until}
}

func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
