package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// Entry is a cached authentication answer: a principal, or the error to
// repeat (unknown, blocked).
type Entry struct {
	Principal Principal
	Err       error
	ExpiresAt *time.Time // the credential's own expiry
	UserID    string     // for invalidation by user
	until     time.Time  // cache expiry
}

// Cache holds authentication answers for a short TTL. Writes that affect
// an answer call Invalidate / InvalidateUser (locally, and in other
// replicas via the store's notifications), so the TTL only bounds how long
// a lost invalidation can matter.
type Cache struct {
	mu      sync.RWMutex
	entries map[string]Entry
	byUser  map[string]map[string]struct{}
	ttl     time.Duration
	negTTL  time.Duration
	max     int
	now     func() time.Time

	hits, misses atomic.Uint64
}

// NewCache returns a cache. max ≤ 0 means 100 000 entries.
func NewCache(ttl, negTTL time.Duration, max int, now func() time.Time) *Cache {
	if max <= 0 {
		max = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{entries: map[string]Entry{}, byUser: map[string]map[string]struct{}{}, ttl: ttl, negTTL: negTTL, max: max, now: now}
}

// Get returns a live entry.
func (c *Cache) Get(key string) (Entry, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && c.now().Before(e.until) {
		c.hits.Add(1)
		return e, true
	}
	c.misses.Add(1)
	return Entry{}, false
}

// Put stores an entry with the positive or negative TTL.
func (c *Cache) Put(key string, e Entry) {
	ttl := c.ttl
	if e.Err != nil {
		ttl = c.negTTL
	}
	e.until = c.now().Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Dropping everything is crude but bounded and rare: the cache
		// refills from the database at the next requests.
		c.entries = map[string]Entry{}
		c.byUser = map[string]map[string]struct{}{}
	}
	c.entries[key] = e
	if e.UserID != "" {
		set := c.byUser[e.UserID]
		if set == nil {
			set = map[string]struct{}{}
			c.byUser[e.UserID] = set
		}
		set[key] = struct{}{}
	}
}

// Invalidate drops the named entries.
func (c *Cache) Invalidate(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.entries[k]; ok && e.UserID != "" {
			delete(c.byUser[e.UserID], k)
		}
		delete(c.entries, k)
	}
}

// InvalidateUser drops every entry that belongs to the user.
func (c *Cache) InvalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.byUser[userID] {
		delete(c.entries, k)
	}
	delete(c.byUser, userID)
}

// Clear drops every entry (after a lost invalidation stream).
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]Entry{}
	c.byUser = map[string]map[string]struct{}{}
}

// Stats returns hit and miss counts (for metrics).
func (c *Cache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}
