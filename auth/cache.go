package auth

import (
	"errors"
	"math"
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
	// UserID and TeamID index the entry, so a change to the owner or the
	// key's team drops it.
	UserID string
	TeamID string
	until  time.Time // cache expiry
}

// Cache holds authentication answers for a short TTL. Every write that
// affects an answer drops it (locally, and in other replicas through the
// store's notifications), so the TTL only bounds how long a lost
// invalidation could matter.
//
// Two rules keep it honest under load and attack:
//   - Answers about credentials that exist (positive, blocked) and answers
//     about unknown credentials live apart. Unknown ones go to a small ring
//     that overwrites its oldest slot, so no amount of random credentials
//     can evict a real key's entry or grow memory without bound.
//   - A load that began before an invalidation touching its key, user or
//     team is not stored (it may have read the old rows), so an answer
//     dropped by a write can never be put back by a slow reader.
//
// While invalidations cannot be heard (SetUnheard), answers about
// credentials that exist are neither served nor stored: every check of one
// reads the database. The ring of unknown credentials still answers (it
// shields the database from floods; a key created meanwhile is refused at
// most its short TTL).
type Cache struct {
	mu      sync.RWMutex
	entries map[string]Entry
	byUser  map[string]map[string]struct{}
	byTeam  map[string]map[string]struct{}
	neg     negRing
	// epoch counts invalidations; marks remembers, per key / "u:"user /
	// "t:"team, the epoch of its last invalidation, for PutIfFresh.
	epoch atomic.Uint64
	marks map[string]mark
	// floor: loads begun at an epoch below it are stale (set by Clear).
	floor uint64
	ttl   time.Duration
	negTT time.Duration
	max   int
	now   func() time.Time

	hits, misses atomic.Uint64
	// distrustAt: from this time (Unix ns, by now) on, answers about
	// existing credentials are not used; 0 from the start (SetUnheard).
	distrustAt atomic.Int64
}

type mark struct {
	epoch uint64
	at    time.Time
}

// maxLoadAge bounds how long a load may take and still be cached; marks
// older than this can be forgotten.
const maxLoadAge = 30 * time.Second

// DefaultNegativeEntries bounds the ring of answers about unknown
// credentials.
const DefaultNegativeEntries = 10_000

// NewCache returns a cache of at most max answers about real credentials
// (≤ 0 means 100 000) and DefaultNegativeEntries about unknown ones.
func NewCache(ttl, negTTL time.Duration, max int, now func() time.Time) *Cache {
	if max <= 0 {
		max = 100_000
	}
	if now == nil {
		now = time.Now
	}
	c := &Cache{entries: map[string]Entry{}, byUser: map[string]map[string]struct{}{}, byTeam: map[string]map[string]struct{}{},
		marks: map[string]mark{}, neg: newNegRing(DefaultNegativeEntries), ttl: ttl, negTT: negTTL, max: max, now: now}
	c.distrustAt.Store(math.MaxInt64)
	return c
}

// Get returns a live entry.
func (c *Cache) Get(key string) (Entry, bool) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[key]
	if ok && !c.trustedAt(now) {
		ok = false
	} else if !ok {
		e, ok = c.neg.get(key)
	}
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		c.hits.Add(1)
		return e, true
	}
	c.misses.Add(1)
	return Entry{}, false
}

// SetUnheard says whether invalidations can go unheard (the replica's
// change listener is not subscribed); while they can, answers about
// existing credentials are neither served nor stored.
func (c *Cache) SetUnheard(unheard bool) {
	if unheard {
		c.distrustAt.Store(0)
	} else {
		c.distrustAt.Store(math.MaxInt64)
	}
}

// TrustUntil makes answers about existing credentials usable until t
// only: a caller that learns its link is alive at intervals (a listener's
// heartbeat) extends it each time, so a link that freezes without
// breaking stops the cache's use when the proof of life runs out.
func (c *Cache) TrustUntil(t time.Time) { c.distrustAt.Store(t.UnixNano()) }

// Trusted reports whether answers about existing credentials are served
// now.
func (c *Cache) Trusted() bool { return c.trustedAt(c.now()) }

func (c *Cache) trustedAt(now time.Time) bool { return now.UnixNano() < c.distrustAt.Load() }

// GetBytes is Get for a key held in a byte slice (a hex digest on the
// caller's stack): the lookup converts without allocating.
func (c *Cache) GetBytes(key []byte) (Entry, bool) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.entries[string(key)]
	if ok && !c.trustedAt(now) {
		ok = false
	} else if !ok {
		var ne negEntry
		ne, ok = c.neg.m[string(key)]
		e = ne.entry()
	}
	c.mu.RUnlock()
	if ok && now.Before(e.until) {
		c.hits.Add(1)
		return e, true
	}
	// A miss is counted by the Get that follows.
	return Entry{}, false
}

// Epoch returns the invalidation counter; take it before loading an
// answer and hand it to PutIfFresh.
func (c *Cache) Epoch() uint64 { return c.epoch.Load() }

// Put stores an entry unconditionally (tests and callers that cannot race
// with writes).
func (c *Cache) Put(key string, e Entry) { c.PutIfFresh(key, e, c.epoch.Load(), c.now()) }

// PutIfFresh stores an entry loaded from the database, unless its key,
// user or team was invalidated after epoch (taken when the load began at
// started), or the load took longer than maxLoadAge.
func (c *Cache) PutIfFresh(key string, e Entry, epoch uint64, started time.Time) bool {
	now := c.now()
	unknown := errors.Is(e.Err, ErrInvalid)
	if now.Sub(started) > maxLoadAge || (!unknown && !c.trustedAt(now)) {
		return false
	}
	ttl := c.ttl
	if e.Err != nil {
		ttl = c.negTT
	}
	e.until = now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(key, epoch) || (e.UserID != "" && c.staleLocked("u:"+e.UserID, epoch)) ||
		(e.TeamID != "" && c.staleLocked("t:"+e.TeamID, epoch)) {
		return false
	}
	if unknown {
		c.dropLocked(key)
		c.neg.put(key, e)
		return true
	}
	c.neg.del(key)
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		// Evict one entry; only real credentials reach this map, so it
		// fills only as far as the database holds keys and sessions.
		for k := range c.entries {
			c.dropLocked(k)
			break
		}
	}
	c.dropLocked(key)
	c.entries[key] = e
	index(c.byUser, e.UserID, key)
	index(c.byTeam, e.TeamID, key)
	return true
}

func index(m map[string]map[string]struct{}, id, key string) {
	if id == "" {
		return
	}
	set := m[id]
	if set == nil {
		set = map[string]struct{}{}
		m[id] = set
	}
	set[key] = struct{}{}
}

func unindex(m map[string]map[string]struct{}, id, key string) {
	if set := m[id]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(m, id)
		}
	}
}

func (c *Cache) staleLocked(id string, epoch uint64) bool {
	if epoch < c.floor {
		return true
	}
	m, ok := c.marks[id]
	return ok && m.epoch > epoch
}

func (c *Cache) dropLocked(key string) {
	if e, ok := c.entries[key]; ok {
		unindex(c.byUser, e.UserID, key)
		unindex(c.byTeam, e.TeamID, key)
		delete(c.entries, key)
	}
}

// markLocked records an invalidation of id and forgets marks no load can
// still be racing with.
func (c *Cache) markLocked(id string) {
	now := c.now()
	c.marks[id] = mark{epoch: c.epoch.Add(1), at: now}
	if len(c.marks) > 4096 {
		for k, m := range c.marks {
			if now.Sub(m.at) > maxLoadAge {
				delete(c.marks, k)
			}
		}
	}
}

// Invalidate drops the named entries (API key hashes or session ids).
func (c *Cache) Invalidate(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.markLocked(k)
		c.dropLocked(k)
		c.neg.del(k)
	}
}

// InvalidateUser drops every entry that belongs to the user.
func (c *Cache) InvalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markLocked("u:" + userID)
	for k := range c.byUser[userID] {
		c.dropLocked(k)
	}
}

// InvalidateTeam drops every entry whose key belongs to the team.
func (c *Cache) InvalidateTeam(teamID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markLocked("t:" + teamID)
	for k := range c.byTeam[teamID] {
		c.dropLocked(k)
	}
}

// Clear drops every entry (after a lost invalidation stream).
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]Entry{}
	c.byUser = map[string]map[string]struct{}{}
	c.byTeam = map[string]map[string]struct{}{}
	c.neg = newNegRing(c.neg.size())
	// Every load in flight may have read old rows.
	c.marks = map[string]mark{}
	c.markAllLocked()
}

// markAllLocked makes every load begun so far stale: the marks map is
// empty, so the global floor is kept as a mark every key checks.
func (c *Cache) markAllLocked() {
	c.floor = c.epoch.Add(1)
}

// Len returns the number of answers held about real and unknown
// credentials (for tests and metrics).
func (c *Cache) Len() (known, unknown int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries), c.neg.len()
}

// Stats returns hit and miss counts (for metrics).
func (c *Cache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}

// negRing is a bounded map of answers about unknown credentials that
// overwrites its oldest slot when full. It grows as answers arrive rather
// than being allocated at its bound: two caches' 10 000 slots were most of
// an idle server's heap (bench/README.md, "Idle memory").
type negRing struct {
	m    map[string]negEntry
	ring []string
	max  int
	next int
}

// negEntry is what an answer about an unknown credential needs: its error
// and its expiry. Keeping the whole Entry (a principal's worth of fields)
// made a flood's 10 000 slots cost megabytes.
type negEntry struct {
	err   error
	until time.Time
}

func (n negEntry) entry() Entry { return Entry{Err: n.err, until: n.until} }

func newNegRing(n int) negRing {
	return negRing{m: map[string]negEntry{}, max: max(n, 1)}
}

func (r *negRing) size() int { return r.max }
func (r *negRing) len() int  { return len(r.m) }

func (r *negRing) get(k string) (Entry, bool) {
	n, ok := r.m[k]
	return n.entry(), ok
}

func (r *negRing) put(k string, e Entry) {
	n := negEntry{err: e.Err, until: e.until}
	if _, ok := r.m[k]; ok {
		r.m[k] = n
		return
	}
	if len(r.ring) < r.max {
		r.ring = append(r.ring, k)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % r.max
	}
	r.m[k] = n
}

func (r *negRing) del(k string) {
	// The ring slot keeps the name until overwritten; deleting a name that
	// was re-added meanwhile is harmless (it is just an earlier eviction).
	delete(r.m, k)
}

// Spent is usage recorded against a key: it raises the key's, its owner's,
// its team's and the member's budget figures by Amount.
type Spent struct {
	KeyHash, UserID, TeamID string
	Amount                  float64
}

// AddSpend raises the spend figures of every cached answer carrying one of
// the budgets s touches, in place: recording usage must make budgets bite
// at once without dropping (and reloading) every answer about the key, its
// owner and its team. Loads racing the recording are not cached (the same
// rule as an invalidation), since they may have read the old totals.
func (c *Cache) AddSpend(s Spent) {
	if s.Amount == 0 {
		return
	}
	ids := map[string]bool{}
	if s.KeyHash != "" {
		ids[BudgetID("key", s.KeyHash, "", "")] = true
	}
	if s.UserID != "" {
		ids[BudgetID("user", "", s.UserID, "")] = true
	}
	if s.TeamID != "" {
		ids[BudgetID("team", "", "", s.TeamID)] = true
		if s.UserID != "" {
			ids[BudgetID("team member", "", s.UserID, s.TeamID)] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	touched := map[string]struct{}{}
	visit := func(key string) {
		if _, done := touched[key]; done {
			return
		}
		touched[key] = struct{}{}
		e, ok := c.entries[key]
		if !ok || e.Principal.Access == nil {
			return
		}
		var acc *Access
		for i, b := range e.Principal.Access.Budgets {
			if !ids[b.ID] {
				continue
			}
			if acc == nil {
				// Copy on write: readers hold the old *Access.
				cp := *e.Principal.Access
				cp.Budgets = append([]Budget(nil), cp.Budgets...)
				acc = &cp
			}
			acc.Budgets[i].Spend += s.Amount
		}
		if acc != nil {
			e.Principal.Access = acc
			c.entries[key] = e
		}
	}
	if s.KeyHash != "" {
		c.markLocked(s.KeyHash)
		visit(s.KeyHash)
	}
	if s.UserID != "" {
		c.markLocked("u:" + s.UserID)
		for k := range c.byUser[s.UserID] {
			visit(k)
		}
	}
	if s.TeamID != "" {
		c.markLocked("t:" + s.TeamID)
		for k := range c.byTeam[s.TeamID] {
			visit(k)
		}
	}
}
