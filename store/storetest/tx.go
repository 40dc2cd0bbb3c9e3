package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

func testTxRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUser(t, s, "existing", "", at(0))
	err := s.Tx(ctx, func(tx store.Store) error {
		u := store.User{ID: "u", Email: "u@example.com", CreatedAt: at(1), UpdatedAt: at(1)}
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		tm := store.Team{ID: "t", CreatedAt: at(1), UpdatedAt: at(1)}
		if err := tx.CreateTeam(ctx, &tm); err != nil {
			return err
		}
		if err := tx.PutMembership(ctx, store.Membership{TeamID: "t", UserID: "u", CreatedAt: at(1)}); err != nil {
			return err
		}
		k := store.Key{Hash: "k", UserID: "u", CreatedAt: at(1), UpdatedAt: at(1)}
		if err := tx.CreateKey(ctx, &k); err != nil {
			return err
		}
		if err := tx.RecordSpend(ctx, store.SpendEntry{RequestID: "r", KeyHash: "k", UserID: "existing", Spend: 1, CreatedAt: at(1)}); err != nil {
			return err
		}
		if _, err := tx.UpdateUser(ctx, "existing", func(u *store.User) error { u.Alias = "changed"; return nil }); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if _, err := tx.GetKey(ctx, "k"); err != nil {
			return err
		}
		return errBoom
	})
	require.ErrorIs(t, err, errBoom, "Tx returns fn's error")

	_, err = s.GetUser(ctx, "u")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetTeam(ctx, "t")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetMembership(ctx, "t", "u")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetKey(ctx, "k")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, total, err := s.ListSpend(ctx, store.SpendFilter{})
	require.NoError(t, err)
	require.Zero(t, total)
	u, err := s.GetUser(ctx, "existing")
	require.NoError(t, err)
	require.Empty(t, u.Alias)
	require.Zero(t, u.Spend)
}

func testTxPanic(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.PanicsWithValue(t, "storetest: panic in tx", func() {
		_ = s.Tx(ctx, func(tx store.Store) error {
			u := store.User{ID: "u", CreatedAt: at(0), UpdatedAt: at(0)}
			require.NoError(t, tx.CreateUser(ctx, &u))
			panic("storetest: panic in tx")
		})
	})
	_, err := s.GetUser(ctx, "u")
	require.ErrorIs(t, err, store.ErrNotFound)
	// The store is still usable after the panic.
	mkUser(t, s, "v", "", at(0))
}

func testTxCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.Tx(ctx, func(tx store.Store) error {
		u := store.User{ID: "u", CreatedAt: at(1), UpdatedAt: at(1)}
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		if _, err := tx.UpdateUser(ctx, "u", func(u *store.User) error { u.Alias = "set in tx"; return nil }); err != nil {
			return err
		}
		// A nested Tx joins the outer one.
		return tx.Tx(ctx, func(inner store.Store) error {
			k := store.Key{Hash: "k", UserID: "u", CreatedAt: at(1), UpdatedAt: at(1)}
			if err := inner.CreateKey(ctx, &k); err != nil {
				return err
			}
			return inner.RecordSpend(ctx, store.SpendEntry{RequestID: "r", KeyHash: "k", UserID: "u", Spend: 2, CreatedAt: at(2)})
		})
	})
	require.NoError(t, err)
	u, err := s.GetUser(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, "set in tx", u.Alias)
	require.InDelta(t, 2.0, u.Spend, 0)
	k, err := s.GetKey(ctx, "k")
	require.NoError(t, err)
	require.InDelta(t, 2.0, k.Spend, 0)
}
