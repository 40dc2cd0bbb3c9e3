package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// spendFixture creates a user in a team with a team key.
func spendFixture(t *testing.T, s store.Store) {
	t.Helper()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "other", "", at(0))
	mkTeam(t, s, "t", at(0))
	mkMember(t, s, "t", "u", at(0))
	mkMember(t, s, "t", "other", at(0))
	mkKey(t, s, "k", "u", "t", at(0))
	mkKey(t, s, "k-other", "other", "t", at(0))
}

// requireTotals checks the running totals; amounts in the tests are
// binary fractions so sums are exact on every database.
func requireTotals(t *testing.T, s store.Store, key, user, team, member float64) {
	t.Helper()
	ctx := t.Context()
	k, err := s.GetKey(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, key, k.Spend, "key spend")
	u, err := s.GetUser(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, user, u.Spend, "user spend")
	tm, err := s.GetTeam(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, team, tm.Spend, "team spend")
	m, err := s.GetMembership(ctx, "t", "u")
	require.NoError(t, err)
	require.Equal(t, member, m.Spend, "membership spend")
}

func testSpendConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.RecordSpend(ctx, store.SpendEntry{
				RequestID: fmt.Sprintf("req-%03d", i), KeyHash: "k", UserID: "u", TeamID: "t", Model: "m",
				PromptTokens: 10, CompletionTokens: 5, Spend: 0.25, CreatedAt: at(i),
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireTotals(t, s, 25, 25, 25, 25)
	_, total, err := s.ListSpend(ctx, store.SpendFilter{KeyHash: "k"})
	require.NoError(t, err)
	require.EqualValues(t, n, total)

	// The other member and their key are untouched.
	o, err := s.GetKey(ctx, "k-other")
	require.NoError(t, err)
	require.Zero(t, o.Spend)
	om, err := s.GetMembership(ctx, "t", "other")
	require.NoError(t, err)
	require.Zero(t, om.Spend)
}

func testSpendDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	e := store.SpendEntry{RequestID: "dup", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 1.5, CreatedAt: at(1)}
	require.NoError(t, s.RecordSpend(ctx, e))
	require.ErrorIs(t, s.RecordSpend(ctx, e), store.ErrConflict)
	requireTotals(t, s, 1.5, 1.5, 1.5, 1.5)

	// Concurrent retries of one request: exactly one counts.
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			results <- s.RecordSpend(ctx, store.SpendEntry{RequestID: "retry", KeyHash: "k", UserID: "u", TeamID: "t",
				Spend: 0.5, CreatedAt: at(2)})
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict)
	}
	require.Equal(t, 1, ok)
	requireTotals(t, s, 2, 2, 2, 2)

	// Spend without a team touches no team or membership; an unknown key
	// is not an error (the key may have been deleted meanwhile).
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "solo", KeyHash: "gone", UserID: "u", Spend: 1, CreatedAt: at(3)}))
	requireTotals(t, s, 2, 3, 2, 2)
}

func testSpendList(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 10 {
		user, key, team := "u1", "k1", "t1"
		if i%2 == 1 {
			user, key, team = "u2", "k2", ""
		}
		require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{
			RequestID: fmt.Sprintf("r%02d", 9-i), KeyHash: key, UserID: user, TeamID: team, Model: "m",
			PromptTokens: int64(i), CompletionTokens: 1, Spend: 0.5, CreatedAt: at(i / 2),
		}))
	}
	ids := func(es []store.SpendEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.RequestID
		}
		return out
	}
	all, total, err := s.ListSpend(ctx, store.SpendFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 10, total)
	require.Equal(t, []string{"r08", "r09", "r06", "r07", "r04", "r05", "r02", "r03", "r00", "r01"}, ids(all),
		"ordered by time, then request id")
	require.Equal(t, store.SpendEntry{RequestID: "r08", KeyHash: "k2", UserID: "u2", Model: "m", PromptTokens: 1,
		CompletionTokens: 1, Spend: 0.5, CreatedAt: at(0)}, all[0])

	page, total, err := s.ListSpend(ctx, store.SpendFilter{UserID: "u1", Page: store.Page{Offset: 1, Limit: 2}})
	require.NoError(t, err)
	require.EqualValues(t, 5, total)
	require.Equal(t, []string{"r07", "r05"}, ids(page))

	page, total, err = s.ListSpend(ctx, store.SpendFilter{KeyHash: "k2"})
	require.NoError(t, err)
	require.EqualValues(t, 5, total)
	require.Equal(t, "r08", page[0].RequestID)

	_, total, err = s.ListSpend(ctx, store.SpendFilter{TeamID: "t1"})
	require.NoError(t, err)
	require.EqualValues(t, 5, total)

	page, total, err = s.ListSpend(ctx, store.SpendFilter{RequestID: "r03"})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, []string{"r03"}, ids(page))

	page, total, err = s.ListSpend(ctx, store.SpendFilter{Since: ptr(at(1)), Until: ptr(at(3))})
	require.NoError(t, err)
	require.EqualValues(t, 4, total, "since inclusive, until exclusive")
	require.Equal(t, []string{"r06", "r07", "r04", "r05"}, ids(page))
}
