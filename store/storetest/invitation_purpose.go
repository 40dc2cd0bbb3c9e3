package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// mkPurpose creates an invitation with the given purpose.
func mkPurpose(t *testing.T, s store.Store, idHash, userID, purpose string, created time.Time) store.Invitation {
	t.Helper()
	inv := store.Invitation{IDHash: idHash, UserID: userID, Purpose: purpose, ExpiresAt: created.Add(time.Hour),
		CreatedAt: created, CreatedBy: "admin", UpdatedAt: created, UpdatedBy: "admin"}
	require.NoError(t, s.CreateInvitation(t.Context(), &inv))
	return inv
}

func invIDs(is []store.Invitation) []string {
	out := make([]string, len(is))
	for i, x := range is {
		out[i] = x.IDHash
	}
	return out
}

func testInvitationsPurposeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	mkUser(t, s, "w", "", at(0))
	for _, tc := range []struct{ id, user, in, want string }{
		{"empty", "u", "", store.PurposeInvitation},
		{"inv", "v", store.PurposeInvitation, store.PurposeInvitation},
		{"reset", "w", store.PurposePasswordReset, store.PurposePasswordReset},
	} {
		created := mkPurpose(t, s, tc.id, tc.user, tc.in, at(1))
		require.Equal(t, tc.want, created.Purpose, "%s: CreateInvitation reports the stored purpose", tc.id)
		got, err := s.GetInvitation(ctx, tc.id)
		require.NoError(t, err)
		require.Equal(t, created, got)
	}

	updated, err := s.UpdateInvitation(ctx, "reset", func(i *store.Invitation) error {
		i.ExpiresAt = at(300)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, store.PurposePasswordReset, updated.Purpose, "an update keeps the purpose")
	consumed, err := s.ConsumeInvitation(ctx, "reset", at(2), "w")
	require.NoError(t, err)
	require.Equal(t, store.PurposePasswordReset, consumed.Purpose, "consume reports the purpose")

	updated, err = s.UpdateInvitation(ctx, "inv", func(i *store.Invitation) error {
		i.Purpose = ""
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, store.PurposeInvitation, updated.Purpose, "an update normalises the empty purpose too")

	bad := store.Invitation{IDHash: "star", UserID: "u", Purpose: store.PurposeAll, ExpiresAt: at(60), CreatedAt: at(1), UpdatedAt: at(1)}
	require.Error(t, s.CreateInvitation(ctx, &bad), "the filter wildcard is not a purpose")
	_, err = s.GetInvitation(ctx, "star")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testInvitationsListByPurpose(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkUser(t, s, "v", "", at(0))
	mkPurpose(t, s, "u-inv", "u", "", at(1))
	mkPurpose(t, s, "u-reset", "u", store.PurposePasswordReset, at(2))
	mkPurpose(t, s, "v-inv", "v", store.PurposeInvitation, at(3))
	mkPurpose(t, s, "v-reset", "v", store.PurposePasswordReset, at(4))

	for _, tc := range []struct {
		name string
		f    store.InvitationFilter
		want []string
	}{
		{"default lists invitations only", store.InvitationFilter{}, []string{"u-inv", "v-inv"}},
		{"explicit invitation", store.InvitationFilter{Purpose: store.PurposeInvitation}, []string{"u-inv", "v-inv"}},
		{"reset tokens", store.InvitationFilter{Purpose: store.PurposePasswordReset}, []string{"u-reset", "v-reset"}},
		{"all", store.InvitationFilter{Purpose: store.PurposeAll}, []string{"u-inv", "u-reset", "v-inv", "v-reset"}},
		{"user and default", store.InvitationFilter{UserID: "u"}, []string{"u-inv"}},
		{"user and reset", store.InvitationFilter{UserID: "v", Purpose: store.PurposePasswordReset}, []string{"v-reset"}},
		{"user and all", store.InvitationFilter{UserID: "v", Purpose: store.PurposeAll}, []string{"v-inv", "v-reset"}},
		{"unknown purpose", store.InvitationFilter{Purpose: "other"}, []string{}},
	} {
		page, total, err := s.ListInvitations(ctx, tc.f)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, invIDs(page), tc.name)
		require.EqualValues(t, len(tc.want), total, tc.name)
	}

	page, total, err := s.ListInvitations(ctx, store.InvitationFilter{Purpose: store.PurposeAll, Page: store.Page{Offset: 1, Limit: 2}})
	require.NoError(t, err)
	require.EqualValues(t, 4, total, "the total counts every page")
	require.Equal(t, []string{"u-reset", "v-inv"}, invIDs(page))
}

// A reset request must not kill a pending invitation (the user could not
// finish onboarding) and a re-sent invitation must not kill a reset token;
// within one purpose only the newest link works.
func testInvitationsSupersedeByPurpose(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	mkPurpose(t, s, "inv1", "u", "", at(1))
	mkPurpose(t, s, "reset1", "u", store.PurposePasswordReset, at(2))
	_, err := s.GetInvitation(ctx, "inv1")
	require.NoError(t, err, "a new reset token does not supersede a pending invitation")

	mkPurpose(t, s, "inv2", "u", store.PurposeInvitation, at(3))
	_, err = s.GetInvitation(ctx, "reset1")
	require.NoError(t, err, "a new invitation does not supersede a pending reset token")
	_, err = s.GetInvitation(ctx, "inv1")
	require.ErrorIs(t, err, store.ErrNotFound, "a new invitation supersedes the older invitation")

	mkPurpose(t, s, "reset2", "u", store.PurposePasswordReset, at(4))
	_, err = s.ConsumeInvitation(ctx, "reset1", at(5), "u")
	require.ErrorIs(t, err, store.ErrNotFound, "a new reset token supersedes the older reset token")
	_, err = s.GetInvitation(ctx, "inv2")
	require.NoError(t, err)

	// An accepted reset token is history: a later reset leaves it.
	_, err = s.ConsumeInvitation(ctx, "reset2", at(5), "u")
	require.NoError(t, err)
	mkPurpose(t, s, "reset3", "u", store.PurposePasswordReset, at(6))
	page, _, err := s.ListInvitations(ctx, store.InvitationFilter{UserID: "u", Purpose: store.PurposeAll})
	require.NoError(t, err)
	require.Equal(t, []string{"inv2", "reset2", "reset3"}, invIDs(page))
}
