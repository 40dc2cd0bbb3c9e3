package gormstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
)

// TestRefusedConnectionsAreUnavailable: a server that refuses this
// database's connections (ALLOW_CONNECTIONS false, as during maintenance)
// answers with SQLSTATE 55000 inside pgx's connect error. That is the
// database being unavailable (503 with Retry-After), not an internal
// error (found by an outside attack: the management API answered 500).
func TestRefusedConnectionsAreUnavailable(t *testing.T) {
	base := dbtest.PostgresURL(t)
	admin, err := Open(context.Background(), Options{DatabaseURL: base})
	require.NoError(t, err)
	defer admin.Close()
	name := fmt.Sprintf("kgtest_refused_%d", time.Now().UnixNano())
	require.NoError(t, admin.db.Exec("CREATE DATABASE "+name).Error)
	// A defer, not t.Cleanup: it must run before admin closes.
	defer func() { require.NoError(t, admin.db.Exec("DROP DATABASE IF EXISTS "+name).Error) }()
	require.NoError(t, admin.db.Exec("ALTER DATABASE "+name+" ALLOW_CONNECTIONS false").Error)

	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + name
	_, err = Open(context.Background(), Options{DatabaseURL: u.String()})
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "55000", pgErr.Code, "the refusal this test is about")
	require.ErrorIs(t, err, store.ErrUnavailable)

	// Refused credentials are a configuration error, not an outage.
	u.Path = "/postgres"
	u.User = url.User("kgtest_no_such_role")
	_, err = Open(context.Background(), Options{DatabaseURL: u.String()})
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "28000", pgErr.Code)
	require.NotErrorIs(t, err, store.ErrUnavailable)
}

// TestCutConnectionIsUnavailable: a connection that dies mid-statement
// surfaces as an unexpected EOF.
func TestCutConnectionIsUnavailable(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("gormstore: transaction: %w", io.ErrUnexpectedEOF),
		errors.New("failed to receive message: unexpected EOF"),
	} {
		require.ErrorIs(t, translate(err), store.ErrUnavailable, "%v", err)
	}
	require.NotErrorIs(t, translate(&pgconn.PgError{Code: "42P01"}), store.ErrUnavailable, "a missing table is a bug, not an outage")
	require.ErrorIs(t, translate(&pgconn.PgError{Code: "23505"}), store.ErrConflict)
}

// TestTransactionRollbackIsUnavailable: PostgreSQL's class 40 (a deadlock
// it broke, a serialization failure) rolled the transaction back and the
// same request may succeed on a retry: 503 with Retry-After, not a 500.
// Writers that lock a parent row (holdParents) against one that deletes
// it can meet in either order.
func TestTransactionRollbackIsUnavailable(t *testing.T) {
	for _, code := range []string{"40P01", "40001"} {
		err := translate(fmt.Errorf("gormstore: create key: %w", &pgconn.PgError{Code: code}))
		require.ErrorIs(t, err, store.ErrUnavailable, code)
	}
	require.NotErrorIs(t, translate(&pgconn.PgError{Code: "23503"}), store.ErrUnavailable)
}
