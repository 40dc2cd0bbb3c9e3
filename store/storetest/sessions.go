package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testSessionsRevokeOne(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "u", "", at(0))
	x := store.Session{ID: "s1", UserID: "u", Role: "proxy_admin", LoginMethod: "sso", IDToken: "eyJ.id.token",
		SSOSID: "sid-1", CreatedAt: at(0), ExpiresAt: at(60)}
	want := x
	require.NoError(t, s.CreateSession(ctx, &x))
	got, err := s.GetSession(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, want, got)

	require.NoError(t, s.RevokeSession(ctx, "s1", at(5)))
	got, err = s.GetSession(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, ptr(at(5)), got.RevokedAt)
	require.NoError(t, s.RevokeSession(ctx, "s1", at(9)), "revoking twice is fine")
	got, err = s.GetSession(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, ptr(at(5)), got.RevokedAt, "the first revocation time stays")

	require.ErrorIs(t, s.RevokeSession(ctx, "missing", at(5)), store.ErrNotFound)
}

func testSessionsRevokeUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "a", "", at(0))
	mkUser(t, s, "b", "", at(0))
	for _, id := range []string{"a1", "a2", "a3", "keep"} {
		mkSession(t, s, id, "a", "", at(0), at(60))
	}
	mkSession(t, s, "a-old", "a", "", at(0), at(10))     // expired by at(20)
	mkSession(t, s, "a-revoked", "a", "", at(0), at(60)) // revoked before
	require.NoError(t, s.RevokeSession(ctx, "a-revoked", at(1)))
	mkSession(t, s, "b1", "b", "", at(0), at(60))

	ids, err := s.RevokeUserSessions(ctx, "a", at(20), "keep", "b1")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a1", "a2", "a3"}, ids)
	for _, id := range []string{"a1", "a2", "a3"} {
		x, err := s.GetSession(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ptr(at(20)), x.RevokedAt, id)
	}
	for _, id := range []string{"keep", "b1", "a-old"} {
		x, err := s.GetSession(ctx, id)
		require.NoError(t, err)
		require.Nil(t, x.RevokedAt, id)
	}
	x, err := s.GetSession(ctx, "a-revoked")
	require.NoError(t, err)
	require.Equal(t, ptr(at(1)), x.RevokedAt)

	ids, err = s.RevokeUserSessions(ctx, "a", at(21))
	require.NoError(t, err)
	require.Equal(t, []string{"keep"}, ids, "without keep every live session goes")
	ids, err = s.RevokeUserSessions(ctx, "nobody", at(21))
	require.NoError(t, err)
	require.Empty(t, ids)
}

func testSessionsRevokeBySID(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "a", "", at(0))
	mkUser(t, s, "b", "", at(0))
	mkSession(t, s, "s1", "a", "sid-1", at(0), at(60))
	mkSession(t, s, "s2", "a", "sid-1", at(0), at(60))
	mkSession(t, s, "s3", "a", "sid-2", at(0), at(60))
	mkSession(t, s, "p1", "a", "", at(0), at(60))

	ids, err := s.RevokeSessionsBySSOSID(ctx, "sid-1", at(5))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"s1", "s2"}, ids)
	ids, err = s.RevokeSessionsBySSOSID(ctx, "sid-1", at(6))
	require.NoError(t, err)
	require.Empty(t, ids, "already revoked")
	ids, err = s.RevokeSessionsBySSOSID(ctx, "", at(6))
	require.NoError(t, err)
	require.Empty(t, ids, "an empty sid matches no session")
	for _, id := range []string{"s3", "p1"} {
		x, err := s.GetSession(ctx, id)
		require.NoError(t, err)
		require.Nil(t, x.RevokedAt, id)
	}
}
