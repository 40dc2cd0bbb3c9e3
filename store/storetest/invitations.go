package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testInvitationsCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	inv := mkInvitation(t, s, "i1", "u", at(1), at(100))
	got, err := s.GetInvitation(ctx, "i1")
	require.NoError(t, err)
	require.Equal(t, inv, got)
	require.False(t, got.IsAccepted)
	require.Nil(t, got.AcceptedAt)

	updated, err := s.UpdateInvitation(ctx, "i1", func(i *store.Invitation) error {
		i.IDHash = "ignored"
		i.ExpiresAt = at(200)
		i.UpdatedBy = "admin2"
		i.UpdatedAt = at(2)
		return nil
	})
	require.NoError(t, err)
	got, err = s.GetInvitation(ctx, "i1")
	require.NoError(t, err)
	require.Equal(t, updated, got)
	require.Equal(t, at(200), got.ExpiresAt)
	require.Equal(t, "admin2", got.UpdatedBy)

	mkInvitation(t, s, "v1", "v", at(3), at(100))
	page, total, err := s.ListInvitations(ctx, store.InvitationFilter{})
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, "i1", page[0].IDHash)
	require.Equal(t, "v1", page[1].IDHash)
	page, total, err = s.ListInvitations(ctx, store.InvitationFilter{UserID: "v", Page: store.Page{Limit: 1}})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, "v1", page[0].IDHash)

	require.NoError(t, s.DeleteInvitation(ctx, "i1"))
	_, err = s.GetInvitation(ctx, "i1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteInvitation(ctx, "i1"), store.ErrNotFound)
}

func testInvitationsConcurrentConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkInvitation(t, s, "inv", "u", at(0), at(60))
	const n = 50
	type result struct {
		inv store.Invitation
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			inv, err := s.ConsumeInvitation(ctx, "inv", at(30), "u")
			results <- result{inv, err}
		})
	}
	wg.Wait()
	close(results)
	var wins []store.Invitation
	for r := range results {
		if r.err == nil {
			wins = append(wins, r.inv)
			continue
		}
		require.ErrorIs(t, r.err, store.ErrConflict)
	}
	require.Len(t, wins, 1, "exactly one of %d concurrent consumers wins", n)
	require.True(t, wins[0].IsAccepted)
	require.Equal(t, ptr(at(30)), wins[0].AcceptedAt)
	require.Equal(t, at(30), wins[0].UpdatedAt)
	require.Equal(t, "u", wins[0].UpdatedBy)

	got, err := s.GetInvitation(ctx, "inv")
	require.NoError(t, err)
	require.Equal(t, wins[0], got)

	_, err = s.ConsumeInvitation(ctx, "inv", at(31), "u")
	require.ErrorIs(t, err, store.ErrConflict, "used")
	_, err = s.ConsumeInvitation(ctx, "unknown", at(31), "u")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testInvitationsExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	mkUser(t, s, "w", "", at(0))
	mkInvitation(t, s, "late", "u", at(0), at(10))
	_, err := s.ConsumeInvitation(ctx, "late", at(10).Add(time.Second), "u")
	require.ErrorIs(t, err, store.ErrConflict, "expired by one second")
	got, err := s.GetInvitation(ctx, "late")
	require.NoError(t, err)
	require.False(t, got.IsAccepted, "a rejected consume changes nothing")

	mkInvitation(t, s, "edge", "v", at(0), at(10))
	_, err = s.ConsumeInvitation(ctx, "edge", at(10), "v")
	require.ErrorIs(t, err, store.ErrConflict, "valid only while now < ExpiresAt")

	mkInvitation(t, s, "inTime", "w", at(0), at(10))
	_, err = s.ConsumeInvitation(ctx, "inTime", at(10).Add(-time.Second), "w")
	require.NoError(t, err)
}

func testInvitationsSuperseded(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	mkInvitation(t, s, "accepted", "u", at(0), at(100))
	_, err := s.ConsumeInvitation(ctx, "accepted", at(1), "u")
	require.NoError(t, err)
	mkInvitation(t, s, "old", "u", at(2), at(100))
	mkInvitation(t, s, "other-user", "v", at(2), at(100))
	mkInvitation(t, s, "new", "u", at(3), at(100))

	_, err = s.ConsumeInvitation(ctx, "old", at(4), "u")
	require.ErrorIs(t, err, store.ErrNotFound, "a newer invitation supersedes the old one")
	_, err = s.GetInvitation(ctx, "accepted")
	require.NoError(t, err, "accepted invitations are history and stay")
	_, err = s.GetInvitation(ctx, "other-user")
	require.NoError(t, err, "other users' invitations are untouched")
	_, err = s.ConsumeInvitation(ctx, "new", at(4), "u")
	require.NoError(t, err)
}
