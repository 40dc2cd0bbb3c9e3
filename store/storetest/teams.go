package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testTeamsCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	tm := store.Team{
		ID: "t1", Alias: "Platform", Models: []string{"gpt-4o"}, MaxBudget: ptr(100.0), BudgetDuration: "1mo",
		BudgetResetAt: ptr(at(1000)), Spend: 2.5, TPMLimit: ptr(int64(5)), RPMLimit: ptr(int64(6)),
		Metadata: map[string]any{"cost_center": "42"}, Blocked: true, CreatedAt: at(0), UpdatedAt: at(0),
	}
	want := tm
	require.NoError(t, s.CreateTeam(ctx, &tm))
	got, err := s.GetTeam(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, want, got)

	updated, err := s.UpdateTeam(ctx, "t1", func(tm *store.Team) error {
		tm.ID = "nope"
		tm.Alias = "Platform 2"
		tm.Blocked = false
		tm.Models = nil
		tm.MaxBudget = nil
		tm.UpdatedAt = at(3)
		return nil
	})
	require.NoError(t, err)
	got, err = s.GetTeam(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, updated, got)
	require.Equal(t, "t1", got.ID)
	require.Equal(t, "Platform 2", got.Alias)
	require.False(t, got.Blocked)
	require.Nil(t, got.Models)
	require.Nil(t, got.MaxBudget)
	require.Equal(t, at(3), got.UpdatedAt)

	require.NoError(t, s.DeleteTeam(ctx, "t1"))
	_, err = s.GetTeam(ctx, "t1")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testMemberships(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkTeam(t, s, "t1", at(0))
	mkTeam(t, s, "t2", at(0))
	mkUser(t, s, "u1", "", at(0))
	mkUser(t, s, "u2", "", at(0))

	m := store.Membership{TeamID: "t1", UserID: "u1", Role: "admin", MaxBudgetInTeam: ptr(5.0), CreatedAt: at(2)}
	require.NoError(t, s.PutMembership(ctx, m))
	got, err := s.GetMembership(ctx, "t1", "u1")
	require.NoError(t, err)
	require.Equal(t, m, got)

	// Put again updates role and budget but keeps spend and creation time.
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "r", UserID: "u1", TeamID: "t1", Spend: 1.5, CreatedAt: at(3)}))
	require.NoError(t, s.PutMembership(ctx, store.Membership{TeamID: "t1", UserID: "u1", Role: "user", CreatedAt: at(9)}))
	got, err = s.GetMembership(ctx, "t1", "u1")
	require.NoError(t, err)
	require.Equal(t, store.Membership{TeamID: "t1", UserID: "u1", Role: "user", Spend: 1.5, CreatedAt: at(2)}, got)

	mkMember(t, s, "t1", "u2", at(1))
	mkMember(t, s, "t2", "u1", at(1))
	byTeam, err := s.ListMembershipsByTeam(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, byTeam, 2)
	require.Equal(t, "u2", byTeam[0].UserID, "ordered by creation")
	require.Equal(t, "u1", byTeam[1].UserID)
	byUser, err := s.ListMembershipsByUser(ctx, "u1")
	require.NoError(t, err)
	require.Len(t, byUser, 2)
	require.Equal(t, "t2", byUser[0].TeamID)
	require.Equal(t, "t1", byUser[1].TeamID)

	require.NoError(t, s.DeleteMembership(ctx, "t1", "u1"))
	_, err = s.GetMembership(ctx, "t1", "u1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteMembership(ctx, "t1", "u1"), store.ErrNotFound)
	_, err = s.GetMembership(ctx, "t2", "u1")
	require.NoError(t, err)
}

func testTeamsList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("team-%02d", i)
		mkTeam(t, s, id, at(12-i)) // newest id first by time: order must follow time
		want = append([]string{id}, want...)
	}
	page, total, err := s.ListTeams(ctx, store.TeamFilter{Page: store.Page{Offset: 2, Limit: 4}})
	require.NoError(t, err)
	require.EqualValues(t, 12, total)
	got := make([]string, len(page))
	for i, tm := range page {
		got[i] = tm.ID
	}
	require.Equal(t, want[2:6], got)

	mkUser(t, s, "u", "", at(0))
	mkMember(t, s, "team-03", "u", at(0))
	mkMember(t, s, "team-07", "u", at(0))
	page, total, err = s.ListTeams(ctx, store.TeamFilter{UserID: "u"})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, "team-07", page[0].ID)
	require.Equal(t, "team-03", page[1].ID)
}

func testTeamsDeleteCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkTeam(t, s, "t1", at(0))
	mkTeam(t, s, "t2", at(0))
	mkMember(t, s, "t1", "u", at(0))
	mkMember(t, s, "t2", "u", at(0))
	mkKey(t, s, "k-t1", "u", "t1", at(0))
	mkKey(t, s, "k-t2", "u", "t2", at(0))
	mkKey(t, s, "k-own", "u", "", at(0))

	require.NoError(t, s.DeleteTeam(ctx, "t1"))
	require.ErrorIs(t, s.DeleteTeam(ctx, "t1"), store.ErrNotFound)

	_, err := s.GetMembership(ctx, "t1", "u")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetKey(ctx, "k-t1")
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.GetUser(ctx, "u")
	require.NoError(t, err, "members outlive the team")
	_, err = s.GetMembership(ctx, "t2", "u")
	require.NoError(t, err)
	for _, h := range []string{"k-t2", "k-own"} {
		_, err = s.GetKey(ctx, h)
		require.NoError(t, err, h)
	}
}
