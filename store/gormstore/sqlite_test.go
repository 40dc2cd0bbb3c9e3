package gormstore_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/internal/testutil/syncbuf"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
	"github.com/keygate/keygate/store/storetest"
)

// patient lifts the statement and pool bounds far above anything the
// conformance suite needs: it checks what is stored, and its bursts of
// concurrent writes on one row (100 at once, 10 connections) may wait
// longer than the production bound on a loaded machine under -race. The
// bounds themselves are tested by the outage tests.
func patient(o gormstore.Options) gormstore.Options {
	o.Timeout, o.AcquireTimeout = time.Minute, time.Minute
	return o
}

func openT(t *testing.T, o gormstore.Options) *gormstore.Store {
	t.Helper()
	s, err := gormstore.Open(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openT(t, patient(gormstore.Options{SQLitePath: dbtest.SQLitePath(t)}))
	})
}

func TestSQLiteMemory(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: ":memory:"})
	u := store.User{ID: "u", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	require.NoError(t, s.CreateUser(t.Context(), &u))
	_, err := s.GetUser(t.Context(), "u")
	require.NoError(t, err)
}

func TestSQLiteReopenIsIdempotent(t *testing.T) {
	testReopen(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)}, gormstore.DialectSQLite)
}

func TestSQLiteSingleConnection(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t), MaxOpenConns: 20})
	require.Equal(t, 1, s.DB().Stats().MaxOpenConnections, "SQLite always runs on one connection")
}

func TestSQLiteUnopenable(t *testing.T) {
	_, err := gormstore.Open(t.Context(), gormstore.Options{SQLitePath: filepath.Join(t.TempDir(), "missing", "dir", "x.db")})
	require.Error(t, err)
	require.ErrorIs(t, err, store.ErrUnavailable)
}

func TestOpenOptionsErrors(t *testing.T) {
	_, err := gormstore.Open(t.Context(), gormstore.Options{})
	require.Error(t, err)
	_, err = gormstore.Open(t.Context(), gormstore.Options{DatabaseURL: "mysql://user:secret@host/db"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret", "the URL may hold a password and is never echoed")
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := gormstore.Open(t.Context(), gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Ping(t.Context()), store.ErrUnavailable)
	_, err = s.GetUser(t.Context(), "x")
	require.ErrorIs(t, err, store.ErrUnavailable)
}

// testReopen opens the same database twice (the second Open finds every
// migration applied) and checks data and schema survive, then opens two
// stores at once to check concurrent starts do not trip over each other.
func testReopen(t *testing.T, o gormstore.Options, dialect string) {
	t.Helper()
	ctx := t.Context()
	first, err := gormstore.Open(ctx, o)
	require.NoError(t, err)
	require.Equal(t, dialect, first.Dialect())
	u := store.User{ID: "u", Email: "a@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	require.NoError(t, first.CreateUser(ctx, &u))
	require.NoError(t, first.Close())

	for range 2 {
		again, err := gormstore.Open(ctx, o)
		require.NoError(t, err)
		got, err := again.GetUserByEmail(ctx, "A@example.com")
		require.NoError(t, err)
		require.Equal(t, "u", got.ID)
		dup := store.User{ID: "v", Email: "A@EXAMPLE.COM"}
		require.ErrorIs(t, again.CreateUser(ctx, &dup), store.ErrConflict, "indexes survive re-migration")
		var n, distinct int64
		require.NoError(t, again.DB().QueryRowContext(ctx, "SELECT count(*), count(DISTINCT id) FROM keygate_migrations").Scan(&n, &distinct))
		require.GreaterOrEqual(t, n, int64(2))
		require.Equal(t, distinct, n, "each migration is recorded once")
		require.NoError(t, again.Close())
	}
}

func TestTxStoreCannotClose(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	err := s.Tx(t.Context(), func(tx store.Store) error {
		gs, ok := tx.(*gormstore.Store)
		require.True(t, ok)
		require.Error(t, gs.Close())
		require.Nil(t, gs.DB())
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, s.Ping(t.Context()))
}

func TestLoggerNeverSeesSQL(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t), Logger: log})
	u := store.User{ID: "u", PasswordHash: "$argon2id$secret-hash", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	require.NoError(t, s.CreateUser(t.Context(), &u))
	dup := u
	require.ErrorIs(t, s.CreateUser(t.Context(), &dup), store.ErrConflict)
	require.NotContains(t, buf.String(), "secret-hash")
	require.NotContains(t, buf.String(), "INSERT")
	require.Contains(t, buf.String(), "202611270001_initial", "migrations are logged")
}

func TestErrorsWrapContext(t *testing.T) {
	s := openT(t, gormstore.Options{SQLitePath: dbtest.SQLitePath(t)})
	_, err := s.GetUser(context.Background(), "who")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Contains(t, err.Error(), `gormstore: get user "who"`)
	require.False(t, errors.Is(err, store.ErrConflict))
}
