package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testKeysCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u1", "", at(0))
	mkTeam(t, s, "t1", at(0))
	k := store.Key{
		Hash: "h1", KeyName: "sk-...abcd", Alias: "ci", UserID: "u1", TeamID: "t1", Models: []string{"m1", "m2"},
		AllowedRoutes: []string{"/v1/embeddings", "llm_api_routes"}, MaxBudget: ptr(3.0), BudgetDuration: "1d", BudgetResetAt: ptr(at(1440)), Spend: 0.5,
		TPMLimit: ptr(int64(100)), RPMLimit: ptr(int64(7)), Blocked: true, ExpiresAt: ptr(at(9000)),
		KeyType: "llm_api", Metadata: map[string]any{"env": "ci"}, CreatedBy: "admin",
		CreatedAt: at(0), UpdatedAt: at(0), LastActive: ptr(at(2)),
	}
	want := k
	require.NoError(t, s.CreateKey(ctx, &k))
	got, err := s.GetKey(ctx, "h1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	got, err = s.GetKeyByAlias(ctx, "u1", "ci")
	require.NoError(t, err)
	require.Equal(t, want, got)

	// An ownerless key (admin-made service key) is fine.
	mkKey(t, s, "h2", "", "", at(1))

	updated, err := s.UpdateKey(ctx, "h1", func(k *store.Key) error {
		k.Hash = "ignored"
		k.Blocked = false
		k.ExpiresAt = nil
		k.Alias = ""
		k.Models = nil
		k.AllowedRoutes = []string{"/v1/chat/completions"}
		k.UpdatedAt = at(4)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "h1", updated.Hash)
	got, err = s.GetKey(ctx, "h1")
	require.NoError(t, err)
	require.Equal(t, updated, got)
	require.False(t, got.Blocked)
	require.Nil(t, got.ExpiresAt)
	require.Nil(t, got.Models)
	require.Equal(t, []string{"/v1/chat/completions"}, got.AllowedRoutes)
	_, err = s.GetKeyByAlias(ctx, "u1", "ci")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetKeyByAlias(ctx, "u1", "")
	require.ErrorIs(t, err, store.ErrNotFound, "an empty alias matches no key")
	_, err = s.GetKey(ctx, "ignored")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.DeleteKey(ctx, "h1"))
	_, err = s.GetKey(ctx, "h1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteKey(ctx, "h1"), store.ErrNotFound)
}

func testKeysAliasUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.Key{Hash: "a", Alias: "prod", CreatedAt: at(0), UpdatedAt: at(0)}
	require.NoError(t, s.CreateKey(ctx, &a))
	b := store.Key{Hash: "b", Alias: "prod", CreatedAt: at(0), UpdatedAt: at(0)}
	require.ErrorIs(t, s.CreateKey(ctx, &b), store.ErrConflict)
	_, err := s.GetKey(ctx, "b")
	require.ErrorIs(t, err, store.ErrNotFound)

	mkKey(t, s, "c", "", "", at(0))
	mkKey(t, s, "d", "", "", at(0)) // empty aliases never collide
	_, err = s.UpdateKey(ctx, "c", func(k *store.Key) error { k.Alias = "prod"; return nil })
	require.ErrorIs(t, err, store.ErrConflict)
	c, err := s.GetKey(ctx, "c")
	require.NoError(t, err)
	require.Empty(t, c.Alias)

	require.NoError(t, s.DeleteKey(ctx, "a"))
	_, err = s.UpdateKey(ctx, "c", func(k *store.Key) error { k.Alias = "prod"; return nil })
	require.NoError(t, err, "a deleted key frees its alias")
}

func testKeysReplaceHash(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	k := store.Key{Hash: "old", Alias: "svc", UserID: "u", Spend: 4, CreatedAt: at(0), UpdatedAt: at(0)}
	require.NoError(t, s.CreateKey(ctx, &k))
	mkKey(t, s, "taken", "", "", at(0))

	_, err := s.ReplaceKeyHash(ctx, "old", "taken", nil)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.GetKey(ctx, "old")
	require.NoError(t, err, "a failed replace keeps the old key")

	got, err := s.ReplaceKeyHash(ctx, "old", "new", func(k *store.Key) error {
		k.KeyName = "sk-...wxyz"
		k.UpdatedAt = at(5)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "new", got.Hash)
	require.Equal(t, "sk-...wxyz", got.KeyName)
	require.Equal(t, "svc", got.Alias, "the alias moves with the key")
	require.InDelta(t, 4.0, got.Spend, 0)
	require.Equal(t, at(0), got.CreatedAt)

	_, err = s.GetKey(ctx, "old")
	require.ErrorIs(t, err, store.ErrNotFound)
	stored, err := s.GetKey(ctx, "new")
	require.NoError(t, err)
	require.Equal(t, got, stored)
	byAlias, err := s.GetKeyByAlias(ctx, "u", "svc")
	require.NoError(t, err)
	require.Equal(t, "new", byAlias.Hash)

	_, err = s.ReplaceKeyHash(ctx, "old", "newer", nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testKeysList(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u1", "", at(0))
	mkUser(t, s, "u2", "", at(0))
	mkTeam(t, s, "t1", at(0))
	var want []string
	for i := range 30 {
		h := fmt.Sprintf("hash-%02d", i)
		user, team := "u1", ""
		if i%2 == 1 {
			user = "u2"
		}
		if i%5 == 0 {
			team = "t1"
		}
		k := store.Key{Hash: h, Alias: fmt.Sprintf("alias-%02d", i), UserID: user, TeamID: team,
			CreatedAt: at(i / 3), UpdatedAt: at(0)}
		require.NoError(t, s.CreateKey(ctx, &k))
		want = append(want, h)
	}
	page, total, err := s.ListKeys(ctx, store.KeyFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 30, total)
	require.Equal(t, want[:25], keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{UserID: "u2", Page: store.Page{Offset: 2, Limit: 3}})
	require.NoError(t, err)
	require.EqualValues(t, 15, total)
	require.Equal(t, []string{"hash-05", "hash-07", "hash-09"}, keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{TeamID: "t1"})
	require.NoError(t, err)
	require.EqualValues(t, 6, total)
	require.Equal(t, []string{"hash-00", "hash-05", "hash-10", "hash-15", "hash-20", "hash-25"}, keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{UserID: "u2", TeamID: "t1"})
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	require.Equal(t, []string{"hash-05", "hash-15", "hash-25"}, keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{KeyHash: "hash-11"})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, []string{"hash-11"}, keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{KeyAlias: "alias-12"})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, []string{"hash-12"}, keyHashes(page))

	page, total, err = s.ListKeys(ctx, store.KeyFilter{UserID: "nobody"})
	require.NoError(t, err)
	require.Zero(t, total)
	require.Empty(t, page)
}

func testKeysTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkKey(t, s, "a", "", "", at(0))
	mkKey(t, s, "b", "", "", at(0))
	require.NoError(t, s.TouchKeys(ctx, nil))
	require.NoError(t, s.TouchKeys(ctx, map[string]time.Time{"a": at(5), "b": at(6), "unknown": at(7)}))
	a, err := s.GetKey(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, ptr(at(5)), a.LastActive)
	b, err := s.GetKey(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, ptr(at(6)), b.LastActive)

	// A late flush from another replica never moves the time back.
	require.NoError(t, s.TouchKeys(ctx, map[string]time.Time{"a": at(3), "b": at(8)}))
	a, err = s.GetKey(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, ptr(at(5)), a.LastActive)
	b, err = s.GetKey(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, ptr(at(8)), b.LastActive)
}

// errBoom is what update callbacks return to test that their error comes
// back unchanged and nothing is written.
var errBoom = errors.New("storetest: boom")

// testKeyAccess: one load returns a key with the owner, team and the
// owner's memberships the access decision reads, for every shape of key.
func testKeyAccess(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := at(0)
	u := store.User{ID: "u1", Email: "ada@example.com", Role: "internal_user", Models: []string{"gpt-4o"},
		MaxBudget: ptr(9.5), BudgetResetAt: ptr(at(60)), Spend: 1.25, Disabled: true, TPMLimit: ptr(int64(700)), RPMLimit: ptr(int64(7)),
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, s.CreateUser(ctx, &u))
	mkUser(t, s, "u2", "", now) // no memberships
	require.NoError(t, s.CreateTeam(ctx, &store.Team{ID: "t1", Models: []string{"m1"}, MaxBudget: ptr(50.0),
		BudgetResetAt: ptr(at(90)), Spend: 3, Blocked: true, TPMLimit: ptr(int64(900)), RPMLimit: ptr(int64(9)), CreatedAt: now, UpdatedAt: now}))
	mkTeam(t, s, "t2", now)
	require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: "t1", UserID: "u1", Role: "admin", MaxBudgetInTeam: ptr(2.0), Spend: 0.5, CreatedAt: now}))
	require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: "t2", UserID: "u1", Role: "user", CreatedAt: now}))
	k := store.Key{Hash: "h-team", Alias: "a", UserID: "u1", TeamID: "t1", Models: []string{"m1"},
		AllowedRoutes: []string{"/v1/embeddings"}, MaxBudget: ptr(4.0), BudgetResetAt: ptr(at(30)), Spend: 0.75,
		TPMLimit: ptr(int64(10)), RPMLimit: ptr(int64(2)), Blocked: true, ExpiresAt: ptr(at(120)), KeyType: "llm_api",
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, s.CreateKey(ctx, &k))

	got, err := s.GetKeyAccess(ctx, "h-team")
	require.NoError(t, err)
	want := k
	want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	require.Equal(t, want, got.Key)
	require.Equal(t, &store.User{ID: "u1", Email: "ada@example.com", Role: "internal_user", Models: []string{"gpt-4o"},
		MaxBudget: ptr(9.5), BudgetResetAt: ptr(at(60)), Spend: 1.25, Disabled: true, TPMLimit: ptr(int64(700)), RPMLimit: ptr(int64(7))}, got.Owner)
	require.Equal(t, &store.Team{ID: "t1", Models: []string{"m1"}, MaxBudget: ptr(50.0), BudgetResetAt: ptr(at(90)),
		Spend: 3, Blocked: true, TPMLimit: ptr(int64(900)), RPMLimit: ptr(int64(9))}, got.Team)
	require.ElementsMatch(t, []store.Membership{
		{TeamID: "t1", UserID: "u1", MaxBudgetInTeam: ptr(2.0), Spend: 0.5},
		{TeamID: "t2", UserID: "u1"},
	}, got.Memberships)

	// personal key of a user without memberships
	mkKey(t, s, "h-personal", "u2", "", now)
	got, err = s.GetKeyAccess(ctx, "h-personal")
	require.NoError(t, err)
	require.Equal(t, "u2", got.Owner.ID)
	require.Nil(t, got.Team)
	require.Empty(t, got.Memberships)

	// ownerless team key
	mkKey(t, s, "h-ownerless", "", "t2", now)
	got, err = s.GetKeyAccess(ctx, "h-ownerless")
	require.NoError(t, err)
	require.Nil(t, got.Owner)
	require.Equal(t, "t2", got.Team.ID)
	require.Empty(t, got.Memberships)

	_, err = s.GetKeyAccess(ctx, "h-nope")
	require.ErrorIs(t, err, store.ErrNotFound)

	// inside a transaction too
	require.NoError(t, s.Tx(ctx, func(tx store.Store) error {
		got, err := tx.GetKeyAccess(ctx, "h-team")
		require.NoError(t, err)
		require.Len(t, got.Memberships, 2)
		return nil
	}))
}

// testKeyAccessConcurrent: lookups released together (PostgreSQL answers
// them in shared statements) each get their own key's answer, whole: the
// right owner, team and every membership, not found for unknown keys,
// and answers that share nothing with another caller's.
func testKeyAccessConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := at(0)
	const users, teams = 24, 4
	for i := range teams {
		mkTeam(t, s, fmt.Sprintf("t%d", i), now)
	}
	for i := range users {
		id := fmt.Sprintf("u%02d", i)
		require.NoError(t, s.CreateUser(ctx, &store.User{ID: id, Email: id + "@example.com", Role: "internal_user",
			Models: []string{"m-" + id}, CreatedAt: now, UpdatedAt: now}))
		for j := range i % teams { // 0 to 3 memberships
			require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: fmt.Sprintf("t%d", j), UserID: id,
				Role: "user", MaxBudgetInTeam: ptr(float64(i)), CreatedAt: now}))
		}
		team := ""
		if i%3 == 0 {
			team = fmt.Sprintf("t%d", i%teams)
		}
		require.NoError(t, s.CreateKey(ctx, &store.Key{Hash: "h-" + id, UserID: id, TeamID: team,
			Models: []string{"k-" + id}, Spend: float64(i), CreatedAt: now, UpdatedAt: now}))
	}

	const lookups = 120
	type answer struct {
		access store.KeyAccess
		err    error
	}
	got := make([]answer, lookups)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for n := range lookups {
		wg.Go(func() {
			<-start
			hash := fmt.Sprintf("h-u%02d", n%users)
			if n%7 == 0 {
				hash = fmt.Sprintf("h-unknown-%d", n)
			}
			a, err := s.GetKeyAccess(ctx, hash)
			got[n] = answer{a, err}
		})
	}
	close(start)
	wg.Wait()

	for n, g := range got {
		if n%7 == 0 {
			require.ErrorIs(t, g.err, store.ErrNotFound, "lookup %d", n)
			continue
		}
		i := n % users
		id := fmt.Sprintf("u%02d", i)
		require.NoError(t, g.err, "lookup %d", n)
		require.Equal(t, "h-"+id, g.access.Key.Hash, "lookup %d", n)
		require.Equal(t, []string{"k-" + id}, g.access.Key.Models, "lookup %d", n)
		require.Equal(t, float64(i), g.access.Key.Spend, "lookup %d", n)
		require.NotNil(t, g.access.Owner, "lookup %d", n)
		require.Equal(t, id, g.access.Owner.ID, "lookup %d", n)
		require.Equal(t, []string{"m-" + id}, g.access.Owner.Models, "lookup %d", n)
		if i%3 == 0 {
			require.NotNil(t, g.access.Team, "lookup %d", n)
			require.Equal(t, fmt.Sprintf("t%d", i%teams), g.access.Team.ID, "lookup %d", n)
		} else {
			require.Nil(t, g.access.Team, "lookup %d", n)
		}
		var want []store.Membership
		for j := range i % teams {
			want = append(want, store.Membership{TeamID: fmt.Sprintf("t%d", j), UserID: id, MaxBudgetInTeam: ptr(float64(i))})
		}
		require.ElementsMatch(t, want, g.access.Memberships, "lookup %d", n)
	}

	// Answers for one key are separate values: a caller changing its own
	// changes nobody else's.
	first, second := got[1], got[1+users]
	require.Equal(t, first.access.Key.Hash, second.access.Key.Hash)
	first.access.Key.Models[0] = "changed"
	first.access.Owner.Models[0] = "changed"
	first.access.Memberships[0].TeamID = "changed"
	require.Equal(t, []string{"k-u01"}, second.access.Key.Models)
	require.Equal(t, []string{"m-u01"}, second.access.Owner.Models)
	require.Equal(t, "t0", second.access.Memberships[0].TeamID)
}
