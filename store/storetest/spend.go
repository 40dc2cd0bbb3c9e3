package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

func testSpendBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "seen", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 1, CreatedAt: at(0)}))
	batch := []store.SpendEntry{
		{RequestID: "b1", KeyHash: "k", UserID: "u", TeamID: "t", Model: "m", PromptTokens: 3, Spend: 0.5, CreatedAt: at(1)},
		{RequestID: "b2", KeyHash: "k", UserID: "u", TeamID: "t", Model: "m", Spend: 0.25, CreatedAt: at(2)},
		// The upstream reused ids: one already stored, one twice in the batch.
		{RequestID: "seen", KeyHash: "k", UserID: "u", TeamID: "t", Model: "m", Spend: 0.125, CreatedAt: at(3)},
		{RequestID: "b1", KeyHash: "k", UserID: "u", TeamID: "t", Model: "m", Spend: 2, CreatedAt: at(4)},
		// The other member's key in the same team.
		{RequestID: "o1", KeyHash: "k-other", UserID: "other", TeamID: "t", Spend: 4, CreatedAt: at(5)},
		// Free calls are stored but move no total.
		{RequestID: "free", KeyHash: "k", UserID: "u", TeamID: "t", CreatedAt: at(6)},
	}
	done, err := s.RecordSpendBatch(ctx, batch)
	require.NoError(t, err)
	require.Len(t, done, len(batch), "every entry is a distinct request")
	ids := map[string]bool{}
	for i, e := range done {
		require.False(t, ids[e.RequestID], "stored twice under %s", e.RequestID)
		ids[e.RequestID] = true
		require.True(t, strings.HasPrefix(e.RequestID, batch[i].RequestID), "%s keeps its id as a prefix", e.RequestID)
		require.Equal(t, batch[i].Spend, e.Spend)
	}
	require.NotEqual(t, "seen", done[2].RequestID, "a reused id gets a derived one")
	require.NotEqual(t, "b1", done[3].RequestID)
	requireTotals(t, s, 1+0.5+0.25+0.125+2, 1+0.5+0.25+0.125+2, 1+0.5+0.25+0.125+2+4, 1+0.5+0.25+0.125+2)

	// Written again (a commit whose answer was lost), in any order and
	// mixed with a new entry: only the new one counts.
	again := append([]store.SpendEntry{{RequestID: "b3", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 8, CreatedAt: at(7)}}, batch...)
	slices.Reverse(again)
	done, err = s.RecordSpendBatch(ctx, again)
	require.NoError(t, err)
	require.Len(t, done, 1)
	require.Equal(t, "b3", done[0].RequestID)
	requireTotals(t, s, 11.875, 11.875, 15.875, 11.875)
	_, total, err := s.ListSpend(ctx, store.SpendFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 1+len(batch)+1, total)

	// All or nothing: an entry without id fails the batch, nothing moves.
	_, err = s.RecordSpendBatch(ctx, []store.SpendEntry{{RequestID: "b4", UserID: "u", Spend: 1, CreatedAt: at(8)}, {UserID: "u", Spend: 1}})
	require.Error(t, err)
	requireTotals(t, s, 11.875, 11.875, 15.875, 11.875)
	done, err = s.RecordSpendBatch(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, done)

	// A batch larger than one insert statement takes (the store splits
	// it) is still one transaction that adds up.
	var big []store.SpendEntry
	for i := range 450 {
		big = append(big, store.SpendEntry{RequestID: fmt.Sprintf("big-%03d", i), KeyHash: "k", UserID: "u", TeamID: "t",
			Spend: 0.125, CreatedAt: at(9)})
	}
	done, err = s.RecordSpendBatch(ctx, big)
	require.NoError(t, err)
	require.Len(t, done, len(big))
	requireTotals(t, s, 11.875+56.25, 11.875+56.25, 15.875+56.25, 11.875+56.25)
}

// testSpendBatchConcurrent: batches on many connections (replicas) add
// up exactly, overlapping requests included.
func testSpendBatchConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	const writers, per = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			var b []store.SpendEntry
			for i := range per {
				// Every writer also replays writer 0's entries.
				b = append(b, store.SpendEntry{RequestID: fmt.Sprintf("w%d-%d", w, i), KeyHash: "k", UserID: "u", TeamID: "t",
					Spend: 0.25, CreatedAt: at(i)})
				b = append(b, store.SpendEntry{RequestID: fmt.Sprintf("w0-%d", i), KeyHash: "k", UserID: "u", TeamID: "t",
					Spend: 0.25, CreatedAt: at(i)})
			}
			var err error
			for range 5 { // a concurrent insert of the same id is a conflict: retry
				if _, err = s.RecordSpendBatch(ctx, b); !errors.Is(err, store.ErrConflict) {
					break
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := float64(writers*per) * 0.25
	requireTotals(t, s, want, want, want, want)
}
