package gormstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// TestReadOnlySQLiteRefusedAtStart: a database file Keygate can read but
// not write must not start (and report ready) while every write fails.
func TestReadOnlySQLiteRefusedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	st, err := Open(context.Background(), Options{SQLitePath: path})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	// As root, file modes do not stop writes; SQLite's read-only open
	// mode gives the same refusal a read-only file or mount does.
	_, err = Open(context.Background(), Options{SQLitePath: "file:" + path + "?mode=ro"})
	require.Error(t, err)
	require.ErrorIs(t, err, store.ErrNotWritable)
}

// TestFullSQLiteIsUnavailableAndNotReady: when SQLite reports the disk
// full, writes fail as "unavailable, not writable" (a 503 naming the
// cause, not a 500) and readiness fails until space is back.
func TestFullSQLiteIsUnavailableAndNotReady(t *testing.T) {
	st, err := Open(context.Background(), Options{SQLitePath: filepath.Join(t.TempDir(), "keygate.db")})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	require.NoError(t, st.Ping(ctx))
	// max_page_count caps the file as a full disk does, with SQLite's own
	// SQLITE_FULL.
	var pages int64
	require.NoError(t, st.db.Raw("PRAGMA page_count").Scan(&pages).Error)
	require.NoError(t, st.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages)).Error)
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		now := time.Now()
		werr = st.CreateUser(ctx, &store.User{ID: fmt.Sprintf("filler-%05d-%0200d", i, 0), Role: "internal_user", CreatedAt: now, UpdatedAt: now})
	}
	require.Error(t, werr, "the capped database fills up")
	require.ErrorIs(t, werr, store.ErrUnavailable)
	require.ErrorIs(t, werr, store.ErrNotWritable)

	// Readiness writes too. Make the file read-only for this connection,
	// as a remount would.
	require.NoError(t, st.db.Exec("PRAGMA query_only = 1").Error)
	err = st.Ping(ctx)
	require.Error(t, err, "a database that cannot be written is not ready")
	require.True(t, errors.Is(err, store.ErrNotWritable), "%v", err)
	require.NoError(t, st.db.Exec("PRAGMA query_only = 0").Error)
	require.NoError(t, st.Ping(ctx))
}
