package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// child is one kind of row that names a user or a team: how to add it in
// a transaction and how to see whether it is still there.
type child struct {
	name   string
	parent string // "user" or "team"
	add    func(tx store.Store) error
	exists func(s store.Store) bool
}

func children(t *testing.T) []child {
	ctx := t.Context()
	present := func(err error) bool {
		if errors.Is(err, store.ErrNotFound) {
			return false
		}
		require.NoError(t, err)
		return true
	}
	return []child{
		{"team key", "team", func(tx store.Store) error {
			return tx.CreateKey(ctx, &store.Key{Hash: "k-team", UserID: "u", TeamID: "t", CreatedAt: at(1), UpdatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetKey(ctx, "k-team"); return present(err) }},
		{"user key", "user", func(tx store.Store) error {
			return tx.CreateKey(ctx, &store.Key{Hash: "k-user", UserID: "u", CreatedAt: at(1), UpdatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetKey(ctx, "k-user"); return present(err) }},
		{"key moved into the team", "team", func(tx store.Store) error {
			_, err := tx.UpdateKey(ctx, "k-other", func(k *store.Key) error { k.TeamID = "t"; return nil })
			return err
		}, func(s store.Store) bool {
			k, err := s.GetKey(ctx, "k-other")
			return present(err) && k.TeamID == "t"
		}},
		{"team membership", "team", func(tx store.Store) error {
			return tx.PutMembership(ctx, store.Membership{TeamID: "t", UserID: "u", Role: "admin", CreatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetMembership(ctx, "t", "u"); return present(err) }},
		{"user membership", "user", func(tx store.Store) error {
			return tx.PutMembership(ctx, store.Membership{TeamID: "t", UserID: "u", Role: "admin", CreatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetMembership(ctx, "t", "u"); return present(err) }},
		{"invitation", "user", func(tx store.Store) error {
			return tx.CreateInvitation(ctx, &store.Invitation{IDHash: "i", UserID: "u", ExpiresAt: at(100), CreatedAt: at(1), UpdatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetInvitation(ctx, "i"); return present(err) }},
		{"session", "user", func(tx store.Store) error {
			return tx.CreateSession(ctx, &store.Session{ID: "s", UserID: "u", Role: "internal_user", LoginMethod: "password",
				CreatedAt: at(1), ExpiresAt: at(100)})
		}, func(s store.Store) bool { _, err := s.GetSession(ctx, "s"); return present(err) }},
		{"passkey", "user", func(tx store.Store) error {
			return tx.CreatePasskey(ctx, &store.Passkey{ID: "pk", UserID: "u", Name: "laptop", Credential: []byte("{}"), CreatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetPasskey(ctx, "pk"); return present(err) }},
		{"totp", "user", func(tx store.Store) error {
			return tx.PutTOTP(ctx, &store.TOTP{UserID: "u", SecretSealed: []byte("sealed"), CreatedAt: at(1)})
		}, func(s store.Store) bool { _, err := s.GetTOTP(ctx, "u"); return present(err) }},
	}
}

// testParentsNoOrphans: a row that names a user or team is never left
// behind by the deletion of that user or team, whichever of the two
// transactions runs first. On PostgreSQL (read committed) both can run
// at once: the insert's transaction reads the parent, the delete
// commits, then the insert writes — or the insert writes first and the
// delete commits before it — and before the parent rows were locked both
// orders left a key or a membership of a deleted team, which came back
// to life when a team of the same id was created again.
func testParentsNoOrphans(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, c := range children(t) {
		for _, insertFirst := range []bool{false, true} {
			mkUser(t, s, "u", "", at(0))
			mkTeam(t, s, "t", at(0))
			mkKey(t, s, "k-other", "", "", at(0))
			del := func() error {
				if c.parent == "team" {
					return s.DeleteTeam(ctx, "t")
				}
				return s.DeleteUser(ctx, "u")
			}
			deleted := make(chan error, 1)
			txErr := s.Tx(ctx, func(tx store.Store) error {
				if c.parent == "team" {
					if _, err := tx.GetTeam(ctx, "t"); err != nil {
						return err
					}
				} else if _, err := tx.GetUser(ctx, "u"); err != nil {
					return err
				}
				if insertFirst {
					if err := c.add(tx); err != nil {
						return err
					}
				}
				go func() { deleted <- del() }()
				// Let the delete finish where nothing holds it up (that
				// is the race); where a lock does, go on after a moment.
				select {
				case err := <-deleted:
					deleted <- err
				case <-time.After(300 * time.Millisecond):
				}
				if !insertFirst {
					return c.add(tx)
				}
				return nil
			})
			require.NoError(t, <-deleted, "%s: the delete itself succeeds", c.name)
			if txErr != nil {
				require.ErrorIs(t, txErr, store.ErrNotFound, "%s (insert first: %v): refused only because the parent is gone", c.name, insertFirst)
			}
			if c.parent == "team" {
				_, err := s.GetTeam(ctx, "t")
				require.ErrorIs(t, err, store.ErrNotFound)
			}
			require.False(t, c.exists(s), "%s (insert first: %v) outlived its %s", c.name, insertFirst, c.parent)

			// Clean up for the next case.
			_ = s.DeleteUser(ctx, "u")
			_ = s.DeleteTeam(ctx, "t")
			_ = s.DeleteKey(ctx, "k-other")
		}
	}
}

// testParentsMustExist: a key, membership, invitation, session or MFA
// factor naming a user or team that does not exist is refused with
// ErrNotFound.
func testParentsMustExist(t *testing.T, s store.Store) {
	mkKey(t, s, "k-other", "", "", at(0))
	for _, c := range children(t) {
		if c.parent == "team" {
			mkUser(t, s, "u", "", at(0))
		} else {
			mkTeam(t, s, "t", at(0))
		}
		err := c.add(s)
		require.ErrorIs(t, err, store.ErrNotFound, "%s naming a missing %s", c.name, c.parent)
		require.False(t, c.exists(s), c.name)
		_ = s.DeleteUser(t.Context(), "u")
		_ = s.DeleteTeam(t.Context(), "t")
	}
}
