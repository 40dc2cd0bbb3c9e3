package gormstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// writeUser is what a dry-run command might write; DryRun must undo it.
func writeUser(ctx context.Context) func(store.Store) error {
	return func(st store.Store) error {
		now := time.Now().UTC()
		return st.CreateUser(ctx, &store.User{ID: "dry", Role: "internal_user", CreatedAt: now, UpdatedAt: now})
	}
}

func TestDryRunSQLiteCreatesNoFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keygate.db")
	require.NoError(t, gormstore.DryRun(ctx, gormstore.Options{SQLitePath: path}, writeUser(ctx)))
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "a dry run must not create the database")

	st, err := gormstore.Open(ctx, gormstore.Options{SQLitePath: path})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, gormstore.DryRun(ctx, gormstore.Options{SQLitePath: path}, writeUser(ctx)))
	st, err = gormstore.Open(ctx, gormstore.Options{SQLitePath: path})
	require.NoError(t, err)
	defer st.Close()
	_, err = st.GetUser(ctx, "dry")
	require.ErrorIs(t, err, store.ErrNotFound, "a dry run's writes are rolled back")
}

func TestDryRunPostgresMigratesNothing(t *testing.T) {
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	require.NoError(t, gormstore.DryRun(ctx, gormstore.Options{DatabaseURL: url}, func(st store.Store) error {
		// Inside, the schema is there, as after a real start.
		return writeUser(ctx)(st)
	}))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var tables int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables))
	require.Zero(t, tables, "a dry run must not migrate the target")
}
