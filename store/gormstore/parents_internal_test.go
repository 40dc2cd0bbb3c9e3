package gormstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
)

// TestMFAWritesAndUserDeleteDoNotDeadlock: turning an authenticator app on
// (confirm, then new recovery codes, in one transaction), or an admin's
// reset (factors removed, then sessions revoked), while the user is
// deleted ends with one of the two done and the other finding the user
// gone — never a deadlock PostgreSQL breaks with a 503 (outside tests saw
// both: the MFA transaction locked its rows before the user's, the delete
// the user's before the rows). Both now take the user first.
func TestMFAWritesAndUserDeleteDoNotDeadlock(t *testing.T) {
	s, err := Open(t.Context(), Options{DatabaseURL: dbtest.PostgresURL(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	now := time.Now().UTC()
	// Two shapes of MFA transaction: turning an app on (confirm, then new
	// recovery codes) and an admin's reset (every factor removed, then the
	// sessions revoked).
	steps := map[string][2]func(tx store.Store, id string) error{
		"confirm": {
			func(tx store.Store, id string) error { return tx.ConfirmTOTP(ctx, id, 1, now) },
			func(tx store.Store, id string) error {
				return tx.ReplaceRecoveryCodes(ctx, id, []string{"c1-" + id, "c2-" + id}, now)
			},
		},
		"reset": {
			func(tx store.Store, id string) error { return tx.DeleteMFA(ctx, id) },
			func(tx store.Store, id string) error { _, err := tx.RevokeUserSessions(ctx, id, now); return err },
		},
	}
	for i := range 20 {
		shape := "confirm"
		if i%2 == 1 {
			shape = "reset"
		}
		first, second := steps[shape][0], steps[shape][1]
		id := fmt.Sprintf("u%d", i)
		require.NoError(t, s.CreateUser(ctx, &store.User{ID: id, Email: id + "@example.com", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
		require.NoError(t, s.PutTOTP(ctx, &store.TOTP{UserID: id, SecretSealed: []byte("sealed"), CreatedAt: now}))
		require.NoError(t, s.CreateSession(ctx, &store.Session{ID: "s-" + id, UserID: id, Role: "internal_user", LoginMethod: "password",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
		confirmed := make(chan struct{})
		var wg sync.WaitGroup
		var mfaErr, delErr error
		wg.Go(func() {
			mfaErr = s.Tx(ctx, func(tx store.Store) error {
				if err := first(tx, id); err != nil {
					close(confirmed)
					return err
				}
				close(confirmed)
				time.Sleep(50 * time.Millisecond) // the delete starts meanwhile
				return second(tx, id)
			})
		})
		wg.Go(func() {
			<-confirmed
			delErr = s.DeleteUser(ctx, id)
		})
		wg.Wait()
		for what, err := range map[string]error{"mfa": mfaErr, "delete": delErr} {
			if err != nil {
				require.ErrorIs(t, err, store.ErrNotFound, "round %d (%s), %s", i, shape, what)
			}
		}
		_, err := s.GetUser(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "round %d: the delete happened", i)
	}
}
