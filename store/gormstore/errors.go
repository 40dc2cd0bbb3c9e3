package gormstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// translate maps driver and GORM errors onto the store sentinels, keeping
// the original error in the chain for logs.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, gorm.ErrDuplicatedKey), isUniqueViolation(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case isNotWritable(err):
		return fmt.Errorf("%w: %w: %w", store.ErrUnavailable, store.ErrNotWritable, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// isNotWritable: the database refuses writes — SQLite's SQLITE_FULL and
// SQLITE_READONLY, PostgreSQL's disk full (53100) and read-only
// transaction on a standby (25006).
func isNotWritable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "53100" || pgErr.Code == "25006"
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "database or disk is full") || strings.Contains(msg, "readonly database") ||
		strings.Contains(msg, "read-only database")
}

// isUniqueViolation catches duplicates GORM's translator misses (it only
// looks at the outermost error, e.g. not at a failed COMMIT).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isUnavailable reports whether err means the database could not be
// reached (as opposed to rejecting a statement).
func isUnavailable(err error) bool {
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &connErr):
		// Checked before the PgError it may wrap: whatever the server
		// said while we connected (55000: the database does not accept
		// connections now; 57P03: starting up), there is no connection
		// and the next try may find one — except refused credentials
		// (class 28), a configuration error to report as such.
		return !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "28")
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The connection died mid-statement.
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P0x: the server is shutting
		// down or not yet accepting connections; 57014: statement_timeout
		// (or a cancel after our deadline); 55P03: lock_timeout; class 53:
		// out of resources (connections, memory, disk); class 40: the
		// server rolled the transaction back (a deadlock it broke, a
		// serialization failure), which a retry may get past.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") ||
			pgErr.Code == "57014" || pgErr.Code == "55P03" || strings.HasPrefix(pgErr.Code, "53") ||
			strings.HasPrefix(pgErr.Code, "40")
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"connection refused", "connection reset", "broken pipe", "no such host",
		"failed to connect", "sql: database is closed", "unable to open database file",
		// SQLite: another connection or process holds the lock past the
		// busy timeout; an I/O error.
		"database is locked", "database table is locked", "disk i/o error",
		// pgx, when the deadline ends a statement mid-flight.
		"timeout: context deadline exceeded", "conn closed", "unexpected eof",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// notFoundIfNone turns "no row changed" into ErrNotFound.
func notFoundIfNone(res *gorm.DB) error {
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return store.ErrNotFound
	}
	return nil
}
