package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// testNext is the period function the budget tests hand to
// ResetDueBudgets: "1h" and "1d" advance, "stuck" never moves, anything
// else is unparseable (zero time).
func testNext(duration string, from time.Time) time.Time {
	switch duration {
	case "1h":
		return from.Add(time.Hour)
	case "1d":
		return from.AddDate(0, 0, 1)
	case "stuck":
		return from
	}
	return time.Time{}
}

// budgetFixture creates users, teams, memberships and keys in every
// budget state: due, due exactly now, not yet due, never resetting and
// due with a bad or stuck period. Every one has spend 5 (memberships 2).
func budgetFixture(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	type period struct {
		id       string
		duration string
		resetAt  *time.Time
	}
	users := []period{
		{"u-due", "1h", ptr(at(390))}, // 3.5 h before at(600)
		{"u-now", "1d", ptr(at(600))},
		{"u-future", "1h", ptr(at(601))},
		{"u-none", "1h", nil},
		{"u-bad", "bogus", ptr(at(0))},
	}
	for _, p := range users {
		u := store.User{ID: p.id, Role: "internal_user", BudgetDuration: p.duration, BudgetResetAt: p.resetAt,
			MaxBudget: ptr(10.0), Spend: 5, CreatedAt: at(0), UpdatedAt: at(0)}
		require.NoError(t, s.CreateUser(ctx, &u))
	}
	teams := []period{
		{"t-due", "1h", ptr(at(599))},
		{"t-future", "1h", ptr(at(700))},
		{"t-stuck", "stuck", ptr(at(100))},
	}
	for _, p := range teams {
		tm := store.Team{ID: p.id, BudgetDuration: p.duration, BudgetResetAt: p.resetAt, Spend: 5,
			CreatedAt: at(0), UpdatedAt: at(0)}
		require.NoError(t, s.CreateTeam(ctx, &tm))
		require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: p.id, UserID: "u-none", Role: "user",
			MaxBudgetInTeam: ptr(3.0), Spend: 2, CreatedAt: at(0)}))
	}
	keys := []period{
		{"k-due", "1d", ptr(at(600 - 3*24*60 - 1))}, // just over three days behind
		{"k-future", "1d", ptr(at(1000))},
		{"k-none", "", nil},
		{"k-bad", "", ptr(at(10))},
	}
	for _, p := range keys {
		k := store.Key{Hash: p.id, KeyName: "sk-...", UserID: "u-none", BudgetDuration: p.duration,
			BudgetResetAt: p.resetAt, Spend: 5, CreatedAt: at(0), UpdatedAt: at(0)}
		require.NoError(t, s.CreateKey(ctx, &k))
	}
}

func requireUserBudget(t *testing.T, s store.Store, id string, spend float64, resetAt *time.Time) {
	t.Helper()
	u, err := s.GetUser(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, spend, u.Spend, "user %s spend", id)
	require.Equal(t, resetAt, u.BudgetResetAt, "user %s reset time", id)
	require.Equal(t, ptr(10.0), u.MaxBudget, "user %s max budget untouched", id)
}

func requireTeamBudget(t *testing.T, s store.Store, id string, spend, memberSpend float64, resetAt *time.Time) {
	t.Helper()
	tm, err := s.GetTeam(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, spend, tm.Spend, "team %s spend", id)
	require.Equal(t, resetAt, tm.BudgetResetAt, "team %s reset time", id)
	m, err := s.GetMembership(t.Context(), id, "u-none")
	require.NoError(t, err)
	require.Equal(t, memberSpend, m.Spend, "membership of team %s spend", id)
}

func requireKeyBudget(t *testing.T, s store.Store, hash string, spend float64, resetAt *time.Time) {
	t.Helper()
	k, err := s.GetKey(t.Context(), hash)
	require.NoError(t, err)
	require.Equal(t, spend, k.Spend, "key %s spend", hash)
	require.Equal(t, resetAt, k.BudgetResetAt, "key %s reset time", hash)
}

func testResetDueBudgets(t *testing.T, s store.Store) {
	ctx := t.Context()
	budgetFixture(t, s)
	now := at(600)

	r, err := s.ResetDueBudgets(ctx, now, testNext)
	require.NoError(t, err)
	require.Equal(t, []string{"k-bad", "k-due"}, r.KeyHashes)
	require.Equal(t, []string{"u-bad", "u-due", "u-now"}, r.UserIDs)
	require.Equal(t, []string{"t-due", "t-stuck"}, r.TeamIDs)

	requireUserBudget(t, s, "u-due", 0, ptr(at(630)))        // 390 + 4×60: first step after now
	requireUserBudget(t, s, "u-now", 0, ptr(at(600+24*60)))  // due at exactly now
	requireUserBudget(t, s, "u-future", 5, ptr(at(601)))     // not yet due
	requireUserBudget(t, s, "u-none", 5, nil)                // no period
	requireUserBudget(t, s, "u-bad", 0, nil)                 // unparseable: reset once, then never
	requireTeamBudget(t, s, "t-due", 0, 0, ptr(at(659)))     // memberships follow their team
	requireTeamBudget(t, s, "t-future", 5, 2, ptr(at(700)))  // and only theirs
	requireTeamBudget(t, s, "t-stuck", 0, 0, nil)            // next that does not advance: stop
	requireKeyBudget(t, s, "k-due", 0, ptr(at(600+24*60-1))) // four days on
	requireKeyBudget(t, s, "k-future", 5, ptr(at(1000)))
	requireKeyBudget(t, s, "k-none", 5, nil)
	requireKeyBudget(t, s, "k-bad", 0, nil)

	// Nothing is due twice.
	r, err = s.ResetDueBudgets(ctx, now, testNext)
	require.NoError(t, err)
	require.Empty(t, r.KeyHashes)
	require.Empty(t, r.UserIDs)
	require.Empty(t, r.TeamIDs)

	// Spend accrues again and the next period resets it again.
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: "k-due", UserID: "u-due",
		TeamID: "t-due", Spend: 1.5, CreatedAt: at(610)}))
	r, err = s.ResetDueBudgets(ctx, at(630), testNext)
	require.NoError(t, err)
	require.Empty(t, r.KeyHashes)
	require.Equal(t, []string{"u-due", "u-future"}, r.UserIDs)
	requireUserBudget(t, s, "u-due", 0, ptr(at(690)))
	requireUserBudget(t, s, "u-future", 0, ptr(at(661)))
	requireTeamBudget(t, s, "t-due", 1.5, 0, ptr(at(659)))
	requireKeyBudget(t, s, "k-due", 1.5, ptr(at(600+24*60-1)))
}

func testResetDueBudgetsTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	budgetFixture(t, s)
	errRollback := errors.New("roll back")
	err := s.Tx(ctx, func(tx store.Store) error {
		r, err := tx.ResetDueBudgets(ctx, at(600), testNext)
		require.NoError(t, err)
		require.Len(t, r.KeyHashes, 2)
		require.Len(t, r.UserIDs, 3)
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	requireUserBudget(t, s, "u-due", 5, ptr(at(390)))
	requireTeamBudget(t, s, "t-due", 5, 2, ptr(at(599)))
	requireKeyBudget(t, s, "k-due", 5, ptr(at(600-3*24*60-1)))

	// Before the earliest reset time nothing is due.
	r, err := s.ResetDueBudgets(ctx, at(-10000), testNext)
	require.NoError(t, err)
	require.Empty(t, r.KeyHashes)
	require.Empty(t, r.UserIDs)
}
