package gormstore

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
)

// TestFullAttemptWindowRefusesWithoutQueueing: once an account's window
// of failed sign-ins is full, a further attempt is refused from a read,
// without queueing behind the takers of that account (PostgreSQL's
// advisory lock, SQLite's write lock). A burst of wrong passwords for one
// account otherwise held one pooled connection per waiting request, and
// past the statement bound answered 503 instead of 429 (seen failing:
// with the lock held elsewhere, the attempt waited out the bound and
// failed).
func TestFullAttemptWindowRefusesWithoutQueueing(t *testing.T) {
	const subject, limit = "user:burst", 3
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*Store, func(t *testing.T) (release func()))
	}{
		{"postgres", func(t *testing.T) (*Store, func(t *testing.T) func()) {
			s, err := Open(t.Context(), Options{DatabaseURL: dbtest.PostgresURL(t), Timeout: 500 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s, func(t *testing.T) func() {
				tx, err := s.DB().BeginTx(t.Context(), nil)
				require.NoError(t, err)
				_, err = tx.ExecContext(t.Context(), "SELECT pg_advisory_xact_lock(hashtext('keygate_login_attempts'), hashtext($1))", subject)
				require.NoError(t, err)
				return func() { _ = tx.Rollback() }
			}
		}},
		{"sqlite", func(t *testing.T) (*Store, func(t *testing.T) func()) {
			path := dbtest.SQLitePath(t)
			s, err := Open(t.Context(), Options{SQLitePath: path, Timeout: 500 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s, func(t *testing.T) func() {
				// Another process's writer: a connection of its own.
				other, err := sql.Open("sqlite", path)
				require.NoError(t, err)
				conn, err := other.Conn(t.Context())
				require.NoError(t, err)
				_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
				require.NoError(t, err)
				return func() {
					_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
					_ = conn.Close()
					_ = other.Close()
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, hold := tc.open(t)
			ctx := t.Context()
			now := time.Now().UTC()
			since := now.Add(-time.Hour)
			for i := range limit {
				w, err := s.TakeLoginAttempt(ctx, subject, now.Add(time.Duration(i)*time.Millisecond), since, limit)
				require.NoError(t, err)
				require.True(t, w.Taken)
			}
			release := hold(t)
			defer release()
			w, err := s.TakeLoginAttempt(ctx, subject, now.Add(time.Second), since, limit)
			require.NoError(t, err, "a full window must refuse without waiting for the lock")
			require.False(t, w.Taken)
			require.EqualValues(t, limit, w.Count)
			require.WithinDuration(t, now, w.Oldest, time.Millisecond, "the oldest failure says when to try again")
		})
	}
}
