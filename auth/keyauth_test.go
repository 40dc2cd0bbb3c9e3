package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/auth/apikey"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// countingStore is a real store that counts key lookups and can hold them
// until released.
type countingStore struct {
	store.Store
	lookups atomic.Int64
	gate    chan struct{} // nil: no waiting
}

func (c *countingStore) GetKeyAccess(ctx context.Context, hash string) (store.KeyAccess, error) {
	c.lookups.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	return c.Store.GetKeyAccess(ctx, hash)
}

func newKeyAuth(t *testing.T) (*auth.KeyAuthenticator, *countingStore, string) {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	raw, err := apikey.Generate(rand.Reader)
	require.NoError(t, err)
	now := time.Now().UTC()
	require.NoError(t, st.CreateUser(t.Context(), &store.User{ID: "u", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
	require.NoError(t, st.CreateKey(t.Context(), &store.Key{Hash: apikey.Hash(raw), UserID: "u", CreatedAt: now, UpdatedAt: now}))
	cs := &countingStore{Store: st}
	// A long TTL: on a loaded machine the flood below takes longer than the
	// default 30 s, and only eviction, not expiry, is under test.
	return auth.NewKeyAuthenticator(auth.KeyAuthOptions{Store: cs, TTL: time.Hour, NegativeTTL: time.Hour}), cs, raw
}

// TestConcurrentMissesShareOneLookup (issue 12, defect 2): fifty requests
// for one uncached key cost one database lookup.
func TestConcurrentMissesShareOneLookup(t *testing.T) {
	ka, cs, raw := newKeyAuth(t)
	cs.gate = make(chan struct{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ka.Authenticate(context.Background(), auth.Credential{Secret: raw})
			errs <- err
		}()
	}
	// Release the one load only once every request has missed the cache
	// and is waiting for it.
	require.Eventually(t, func() bool { _, m := ka.Cache().Stats(); return m >= n }, 10*time.Second, time.Millisecond)
	close(cs.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, cs.lookups.Load())
}

// TestLoadRacingAnInvalidationIsNotCached: an answer loaded before a write
// that invalidated it is answered once but never cached, so the next
// request reads the new rows.
func TestLoadRacingAnInvalidationIsNotCached(t *testing.T) {
	ka, cs, raw := newKeyAuth(t)
	cs.gate = make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := ka.Authenticate(context.Background(), auth.Credential{Secret: raw})
		done <- err
	}()
	require.Eventually(t, func() bool { return cs.lookups.Load() == 1 }, 10*time.Second, time.Millisecond)
	ka.Cache().InvalidateUser("u") // a write to the owner commits meanwhile
	close(cs.gate)
	require.NoError(t, <-done)
	known, _ := ka.Cache().Len()
	require.Zero(t, known, "a load that raced an invalidation was cached")
	_, err := ka.Authenticate(context.Background(), auth.Credential{Secret: raw})
	require.NoError(t, err)
	require.EqualValues(t, 2, cs.lookups.Load())
	_, err = ka.Authenticate(context.Background(), auth.Credential{Secret: raw})
	require.NoError(t, err)
	require.EqualValues(t, 2, cs.lookups.Load(), "the fresh answer is cached")
}

// TestInvalidKeysNeverEvictValidOnes (issue 12, defect 3): a flood of
// random credentials neither evicts a valid key's cached answer nor grows
// the cache beyond its bound.
func TestInvalidKeysNeverEvictValidOnes(t *testing.T) {
	ka, cs, raw := newKeyAuth(t)
	ctx := context.Background()
	_, err := ka.Authenticate(ctx, auth.Credential{Secret: raw})
	require.NoError(t, err)
	before := cs.lookups.Load()
	// Through the authenticator (each costs a real lookup): more than the
	// negative ring holds.
	buf := make([]byte, 16)
	for range auth.DefaultNegativeEntries + 2000 {
		_, _ = rand.Read(buf)
		_, err := ka.Authenticate(ctx, auth.Credential{Secret: "sk-flood-" + hex.EncodeToString(buf)})
		require.ErrorIs(t, err, auth.ErrInvalid)
	}
	known, unknown := ka.Cache().Len()
	require.Equal(t, 1, known)
	require.LessOrEqual(t, unknown, auth.DefaultNegativeEntries)
	lookups := cs.lookups.Load()
	_, err = ka.Authenticate(ctx, auth.Credential{Secret: raw})
	require.NoError(t, err)
	require.Equal(t, lookups, cs.lookups.Load(), "the valid key was looked up again after the flood")
	require.Greater(t, lookups, before)

	// Straight into a small cache: 200 000 unknown answers.
	c := auth.NewCache(time.Minute, time.Minute, 100, nil)
	c.Put("valid", auth.Entry{Principal: auth.Principal{UserID: "u"}, UserID: "u"})
	for i := range 200_000 {
		c.Put("bad-"+itoaHex(i), auth.Entry{Err: auth.ErrInvalid})
	}
	_, ok := c.Get("valid")
	require.True(t, ok)
	known, unknown = c.Len()
	require.Equal(t, 1, known)
	require.Equal(t, auth.DefaultNegativeEntries, unknown)
}

func itoaHex(i int) string {
	return hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)})
}

// TestAddSpendUpdatesCachedBudgetsInPlace: recorded spend raises every
// cached figure it touches (key, owner, team, member) without a reload,
// and readers holding the old answer are not disturbed.
func TestAddSpendUpdatesCachedBudgetsInPlace(t *testing.T) {
	c := auth.NewCache(time.Minute, time.Minute, 0, nil)
	budgets := func(bs ...auth.Budget) *auth.Access { return &auth.Access{Budgets: bs} }
	c.Put("team-key", auth.Entry{UserID: "u", TeamID: "t", Principal: auth.Principal{Access: budgets(
		auth.Budget{Scope: "key", ID: auth.BudgetID("key", "team-key", "", ""), Max: 10},
		auth.Budget{Scope: "team", ID: auth.BudgetID("team", "", "", "t"), Max: 10},
		auth.Budget{Scope: "team member", ID: auth.BudgetID("team member", "", "u", "t"), Max: 10})}})
	c.Put("personal", auth.Entry{UserID: "u", Principal: auth.Principal{Access: budgets(
		auth.Budget{Scope: "user", ID: auth.BudgetID("user", "", "u", ""), Max: 10})}})
	c.Put("colleague", auth.Entry{UserID: "v", TeamID: "t", Principal: auth.Principal{Access: budgets(
		auth.Budget{Scope: "team", ID: auth.BudgetID("team", "", "", "t"), Max: 10},
		auth.Budget{Scope: "team member", ID: auth.BudgetID("team member", "", "v", "t"), Max: 10})}})
	old, _ := c.Get("team-key")
	c.AddSpend(auth.Spent{KeyHash: "team-key", UserID: "u", TeamID: "t", Amount: 2})
	spends := func(key string) []float64 {
		e, ok := c.Get(key)
		require.True(t, ok, key)
		var out []float64
		for _, b := range e.Principal.Access.Budgets {
			out = append(out, b.Spend)
		}
		return out
	}
	require.Equal(t, []float64{2, 2, 2}, spends("team-key"))
	require.Equal(t, []float64{2}, spends("personal"), "the owner's total counts all their usage")
	require.Equal(t, []float64{2, 0}, spends("colleague"), "the team's total, not the colleague's member budget")
	require.Zero(t, old.Principal.Access.Budgets[0].Spend, "an answer already handed out is not changed under its reader")
}

// TestUnheardCacheAnswersNoExistingCredential: while invalidations may go
// unheard, answers about existing keys (allowed or blocked) are neither
// served nor stored — each check reads the database — while unknown keys
// are still answered from the ring, so a flood does not reach it.
func TestUnheardCacheAnswersNoExistingCredential(t *testing.T) {
	ka, cs, raw := newKeyAuth(t)
	ctx := context.Background()
	_, err := ka.Authenticate(ctx, auth.Credential{Secret: raw})
	require.NoError(t, err)
	_, err = ka.Authenticate(ctx, auth.Credential{Secret: "sk-unknown-0123456789abcdef"})
	require.ErrorIs(t, err, auth.ErrInvalid)
	lookups := cs.lookups.Load()

	ka.Cache().SetUnheard(true)
	for range 3 {
		_, err = ka.Authenticate(ctx, auth.Credential{Secret: raw})
		require.NoError(t, err)
		_, err = ka.Authenticate(ctx, auth.Credential{Secret: "sk-unknown-0123456789abcdef"})
		require.ErrorIs(t, err, auth.ErrInvalid)
	}
	require.Equal(t, lookups+3, cs.lookups.Load(), "the known key is read each time, the unknown one never")
	c := auth.NewCache(time.Minute, time.Minute, 0, nil)
	c.SetUnheard(true)
	require.False(t, c.PutIfFresh("blocked", auth.Entry{Err: auth.ErrBlocked}, c.Epoch(), time.Now()), "a refusal about an existing key is not stored either")

	// Heard again, after dropping everything (as the app does).
	ka.Cache().Clear()
	ka.Cache().SetUnheard(false)
	_, err = ka.Authenticate(ctx, auth.Credential{Secret: raw})
	require.NoError(t, err)
	_, err = ka.Authenticate(ctx, auth.Credential{Secret: raw})
	require.NoError(t, err)
	require.Equal(t, lookups+4, cs.lookups.Load(), "heard again: one read, then the cache")
}
