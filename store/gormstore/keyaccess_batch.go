package gormstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/store"
)

// keyAccessBatcher gathers concurrent key lookups into shared statements.
// On PostgreSQL a lookup's CPU is mostly the round trip (the write that
// wakes the server, the read, the goroutine parked in between), not the
// query. So at most maxRunning statements run at once; a lookup arriving
// while they do waits, and when one ends, everything that waited (up to
// maxBatch distinct keys) goes out together as one statement. A lone
// lookup never waits: it runs at once, as before, so one connection's
// latency is unchanged; a burst of misses (a cold cache, an invalidation)
// costs one round trip per batch instead of one per key.
type keyAccessBatcher struct {
	// one runs a single lookup with the caller's context; many runs a
	// batch of distinct hashes with a context of its own (its waiters have
	// their own deadlines) and returns what it found, keyed by hash (a key
	// that failed alone carries its error).
	one  func(ctx context.Context, hash string) (store.KeyAccess, error)
	many func(ctx context.Context, hashes []string) (map[string]keyAccessResult, error)

	maxRunning, maxBatch int
	// timeout bounds a batch's statement, as the store bounds any other.
	timeout time.Duration

	mu      sync.Mutex
	running int
	pending []*keyAccessWait

	// statements counts what reached the database; tests read it.
	statements atomic.Int64
}

type keyAccessWait struct {
	hash string
	done chan keyAccessResult // buffered: a waiter that gave up is not waited for
}

type keyAccessResult struct {
	access store.KeyAccess
	err    error
}

// Batching defaults: half the pool may run lookups (the rest stays free
// for writes such as spend), and a batch holds at most 100 keys.
const keyAccessBatchMax = 100

func (s *Store) newKeyAccessBatcher(poolSize int) *keyAccessBatcher {
	return &keyAccessBatcher{one: s.keyAccessPgx, many: s.keyAccessManyPgx,
		maxRunning: max(1, poolSize/2), maxBatch: keyAccessBatchMax, timeout: s.timeout + s.acquireTimeout}
}

func (b *keyAccessBatcher) get(ctx context.Context, hash string) (store.KeyAccess, error) {
	b.mu.Lock()
	if b.running < b.maxRunning {
		b.running++
		b.mu.Unlock()
		defer b.next()
		b.statements.Add(1)
		return b.one(ctx, hash)
	}
	w := &keyAccessWait{hash: hash, done: make(chan keyAccessResult, 1)}
	b.pending = append(b.pending, w)
	b.mu.Unlock()
	select {
	case r := <-w.done:
		return r.access, r.err
	case <-ctx.Done():
		// The batch still runs for the others and drops this answer.
		return store.KeyAccess{}, ctx.Err()
	}
}

// next ends a statement: if lookups are waiting, the slot passes to a
// batch of them, run on its own goroutine so that the caller that ended
// the statement answers its own request now instead of serving others.
func (b *keyAccessBatcher) next() {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.running--
		b.mu.Unlock()
		return
	}
	batch := b.takeBatch()
	b.mu.Unlock()
	go b.run(batch)
}

// takeBatch removes up to maxBatch waiters with distinct hashes from
// pending, oldest first. A second lookup of a hash already in the batch
// stays for the next one, so every answer is built for one caller alone
// (answers hold slices a caller may keep). Called with mu held.
func (b *keyAccessBatcher) takeBatch() []*keyAccessWait {
	var (
		batch []*keyAccessWait
		rest  []*keyAccessWait
		seen  = make(map[string]struct{}, min(len(b.pending), b.maxBatch))
	)
	for _, w := range b.pending {
		if _, dup := seen[w.hash]; dup || len(batch) == b.maxBatch {
			rest = append(rest, w)
			continue
		}
		seen[w.hash] = struct{}{}
		batch = append(batch, w)
	}
	b.pending = rest
	return batch
}

func (b *keyAccessBatcher) run(batch []*keyAccessWait) {
	defer b.next()
	b.statements.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if len(batch) == 1 {
		a, err := b.one(ctx, batch[0].hash)
		batch[0].done <- keyAccessResult{a, err}
		return
	}
	hashes := make([]string, len(batch))
	for i, w := range batch {
		hashes[i] = w.hash
	}
	found, err := b.many(ctx, hashes)
	for _, w := range batch {
		switch r, ok := found[w.hash]; {
		case err != nil:
			w.done <- keyAccessResult{err: err}
		case !ok:
			w.done <- keyAccessResult{err: store.ErrNotFound}
		default:
			w.done <- r
		}
	}
}
