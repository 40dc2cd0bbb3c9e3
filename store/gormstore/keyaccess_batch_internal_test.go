package gormstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
)

// TestConcurrentKeyLookupsShareStatements: on PostgreSQL, lookups that
// arrive while the pool's lookup slots are busy go out together, so a
// burst of distinct misses costs far fewer statements than keys, and
// every caller still gets its own key.
func TestConcurrentKeyLookupsShareStatements(t *testing.T) {
	s, err := Open(t.Context(), Options{DatabaseURL: dbtest.PostgresURL(t), MaxOpenConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NotNil(t, s.keyAccessBatch)
	require.Equal(t, 1, s.keyAccessBatch.maxRunning, "half of a two-connection pool")
	now := time.Now().UTC()
	const keys, lookups = 40, 80
	for i := range keys {
		id := fmt.Sprintf("u%d", i)
		require.NoError(t, s.CreateUser(t.Context(), &store.User{ID: id, Email: id + "@example.com", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
		require.NoError(t, s.CreateKey(t.Context(), &store.Key{Hash: "h" + id, UserID: id, CreatedAt: now, UpdatedAt: now}))
	}

	before := s.keyAccessBatch.statements.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, lookups)
	for n := range lookups {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("u%d", n%keys)
			a, err := s.GetKeyAccess(t.Context(), "h"+id)
			if err == nil && (a.Owner == nil || a.Owner.ID != id) {
				err = fmt.Errorf("lookup of h%s answered %+v", id, a)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	statements := s.keyAccessBatch.statements.Load() - before
	t.Logf("%d lookups, %d statements", lookups, statements)
	require.Less(t, statements, int64(lookups/2), "concurrent lookups were not batched")

	idle(t, s.keyAccessBatch)
}

// TestUnreadableKeyFailsAlone: a key whose row does not decode (only a
// hand edit or a foreign import can write one) fails its own lookup, not
// the other keys of its batch (found by an outside attack: 261 of 3 390
// lookups of other keys answered 503).
func TestUnreadableKeyFailsAlone(t *testing.T) {
	s, err := Open(t.Context(), Options{DatabaseURL: dbtest.PostgresURL(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now().UTC()
	require.NoError(t, s.CreateTeam(t.Context(), &store.Team{ID: "t1", CreatedAt: now, UpdatedAt: now}))
	for _, id := range []string{"good1", "bad", "good2", "never"} {
		require.NoError(t, s.CreateUser(t.Context(), &store.User{ID: id, Email: id + "@example.com", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
		require.NoError(t, s.PutMembership(t.Context(), store.Membership{TeamID: "t1", UserID: id, Role: "user", CreatedAt: now}))
		require.NoError(t, s.CreateKey(t.Context(), &store.Key{Hash: "h" + id, UserID: id, Models: []string{"m"}, CreatedAt: now, UpdatedAt: now}))
	}
	require.NoError(t, s.db.Exec("UPDATE api_keys SET models = 'not json' WHERE hash = 'hbad'").Error)
	// -infinity is not "no expiry": such a key fails too, alone.
	require.NoError(t, s.db.Exec("UPDATE api_keys SET expires_at = '-infinity' WHERE hash = 'hnever'").Error)

	found, err := s.keyAccessManyPgx(t.Context(), []string{"hgood1", "hbad", "hgood2", "hnever", "hnone"})
	require.NoError(t, err)
	require.Len(t, found, 4, "hnone is absent")
	require.ErrorIs(t, found["hnever"].err, errInfiniteTime)
	for _, h := range []string{"hgood1", "hgood2"} {
		require.NoError(t, found[h].err, h)
		require.Equal(t, h, found[h].access.Key.Hash)
		require.Equal(t, []string{"m"}, found[h].access.Key.Models)
		require.Len(t, found[h].access.Memberships, 1, h)
	}
	require.ErrorContains(t, found["hbad"].err, "models")
	require.Empty(t, found["hbad"].access.Key.Hash, "a failed key carries no half-read answer")

	// Alone, they fail the same way.
	_, err = s.GetKeyAccess(t.Context(), "hbad")
	require.ErrorContains(t, err, "models")
	_, err = s.GetKeyAccess(t.Context(), "hnever")
	require.ErrorIs(t, err, errInfiniteTime)
}

// gatedLookups is a keyAccessBatcher whose statements block until
// released, recording each batch's hashes.
type gatedLookups struct {
	release chan struct{}
	fail    error

	mu      sync.Mutex
	batches [][]string
}

func (g *gatedLookups) batcher(maxRunning, maxBatch int) *keyAccessBatcher {
	return &keyAccessBatcher{maxRunning: maxRunning, maxBatch: maxBatch, timeout: time.Minute,
		one: func(ctx context.Context, hash string) (store.KeyAccess, error) {
			m, err := g.lookup(ctx, []string{hash})
			if err != nil {
				return store.KeyAccess{}, err
			}
			r, ok := m[hash]
			if !ok {
				return store.KeyAccess{}, store.ErrNotFound
			}
			return r.access, r.err
		},
		many: g.lookup,
	}
}

func (g *gatedLookups) lookup(ctx context.Context, hashes []string) (map[string]keyAccessResult, error) {
	g.mu.Lock()
	g.batches = append(g.batches, append([]string(nil), hashes...))
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.fail != nil {
		return nil, g.fail
	}
	out := map[string]keyAccessResult{}
	for _, h := range hashes {
		if h != "missing" {
			out[h] = keyAccessResult{access: store.KeyAccess{Key: store.Key{Hash: h, Models: []string{h}}}}
		}
	}
	return out, nil
}

// waitPending waits until n lookups queue behind the running ones.
func waitPending(t *testing.T, b *keyAccessBatcher, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == n
	}, 5*time.Second, time.Millisecond)
}

// idle waits until every slot is back and nothing waits.
func idle(t *testing.T, b *keyAccessBatcher) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.running == 0 && len(b.pending) == 0
	}, 5*time.Second, time.Millisecond)
}

func TestKeyAccessBatcher(t *testing.T) {
	t.Run("waiters go out together, distinct and bounded", func(t *testing.T) {
		g := &gatedLookups{release: make(chan struct{})}
		b := g.batcher(1, 3)
		type answer struct {
			hash string
			a    store.KeyAccess
			err  error
		}
		answers := make(chan answer, 8)
		lookup := func(h string) {
			a, err := b.get(t.Context(), h)
			answers <- answer{h, a, err}
		}
		go lookup("first") // takes the only slot
		require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.batches) == 1 }, 5*time.Second, time.Millisecond)
		for i, h := range []string{"a", "b", "a", "missing", "c", "d"} {
			go lookup(h)
			waitPending(t, b, i+1)
		}
		close(g.release)
		got := map[string]int{}
		for range 7 {
			r := <-answers
			if r.hash == "missing" {
				require.ErrorIs(t, r.err, store.ErrNotFound)
			} else {
				require.NoError(t, r.err, r.hash)
				require.Equal(t, r.hash, r.a.Key.Hash)
			}
			got[r.hash]++
		}
		require.Equal(t, map[string]int{"first": 1, "a": 2, "b": 1, "missing": 1, "c": 1, "d": 1}, got)
		idle(t, b)
		// Oldest first, at most three, never one hash twice in a batch.
		g.mu.Lock()
		defer g.mu.Unlock()
		require.Equal(t, [][]string{{"first"}, {"a", "b", "missing"}, {"a", "c", "d"}}, g.batches)
	})

	t.Run("a waiter that gives up leaves at once; the batch still serves the rest", func(t *testing.T) {
		g := &gatedLookups{release: make(chan struct{})}
		b := g.batcher(1, 10)
		done := make(chan error, 3)
		go func() { _, err := b.get(t.Context(), "first"); done <- err }()
		require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.batches) == 1 }, 5*time.Second, time.Millisecond)
		ctx, cancel := context.WithCancel(t.Context())
		gaveUp := make(chan error, 1)
		go func() { _, err := b.get(ctx, "impatient"); gaveUp <- err }()
		waitPending(t, b, 1)
		go func() { _, err := b.get(t.Context(), "patient"); done <- err }()
		waitPending(t, b, 2)
		cancel()
		require.ErrorIs(t, <-gaveUp, context.Canceled)
		close(g.release)
		require.NoError(t, <-done)
		require.NoError(t, <-done)
		idle(t, b)
	})

	t.Run("a failed statement fails every lookup in it", func(t *testing.T) {
		boom := errors.New("boom")
		g := &gatedLookups{release: make(chan struct{}), fail: boom}
		b := g.batcher(1, 10)
		errs := make(chan error, 4)
		go func() { _, err := b.get(t.Context(), "first"); errs <- err }()
		require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.batches) == 1 }, 5*time.Second, time.Millisecond)
		for i, h := range []string{"x", "y", "z"} {
			go func() { _, err := b.get(t.Context(), h); errs <- err }()
			waitPending(t, b, i+1)
		}
		close(g.release)
		for range 4 {
			require.ErrorIs(t, <-errs, boom)
		}
		idle(t, b)
	})

	t.Run("a panicking lookup gives its slot back", func(t *testing.T) {
		b := &keyAccessBatcher{maxRunning: 1, maxBatch: 10, timeout: time.Minute,
			one: func(context.Context, string) (store.KeyAccess, error) { panic("lookup bug") }}
		require.Panics(t, func() { _, _ = b.get(t.Context(), "x") })
		require.Zero(t, b.running)
	})
}
