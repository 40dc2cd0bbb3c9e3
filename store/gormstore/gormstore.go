// Package gormstore implements store.Store with GORM on SQLite (pure Go,
// github.com/glebarez/sqlite) and PostgreSQL (gorm.io/driver/postgres).
//
// Records of package store are plain structs; this package keeps its own
// row structs with gorm tags and maps between the two, so that the schema
// is owned here and never leaks into the service layer. Slices and maps are
// stored as JSON text, times as UTC with microsecond precision (what
// PostgreSQL keeps), so a record reads back equal on both dialects.
package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/keygate/keygate/store"
)

// Dialect names returned by Store.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Pool defaults for PostgreSQL. MaxOpenConns stays well below the server's
// usual max_connections (100) so that several replicas, or several test
// packages, fit on one server.
const (
	defaultMaxOpenConns    = 10
	defaultMaxIdleConns    = 5
	defaultConnMaxLifetime = 30 * time.Minute
)

// Options configures Open.
type Options struct {
	// DatabaseURL selects PostgreSQL: a postgres:// or postgresql:// URL or
	// a "host=... user=..." keyword DSN. Empty selects SQLite.
	DatabaseURL string
	// SQLitePath is the SQLite database file (used when DatabaseURL is
	// empty). ":memory:" works because SQLite runs on one connection.
	SQLitePath string
	// Pool settings; zero picks a default. SQLite always uses exactly one
	// connection so that writers never see "database is locked".
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// Logger receives slow-query warnings and migration notes; nil
	// discards them. SQL text and parameters are never logged because
	// parameters may hold password or key hashes.
	Logger *slog.Logger
}

// Store is the GORM implementation of store.Store. The zero value is not
// usable; call Open.
type Store struct {
	db      *gorm.DB
	dialect string
	log     *slog.Logger
	// dsn is the PostgreSQL URL/DSN, kept for Listen's dedicated
	// connection; empty on SQLite. It may hold a password: never log it.
	dsn string
	// inTx marks a Store bound to a transaction by Tx.
	inTx bool
	// keyAccess holds GetKeyAccess's statement, prepared at its first
	// successful use.
	keyAccess struct {
		mu   sync.Mutex
		stmt atomic.Pointer[sql.Stmt]
	}
}

var _ store.Store = (*Store)(nil)

// Open connects to the database selected by o and applies pending
// migrations. Connection failures wrap store.ErrUnavailable.
func Open(ctx context.Context, o Options) (*Store, error) {
	return open(ctx, o, migrations())
}

// open is Open with the schema history to apply; tests pass a prefix of
// migrations() to build a database as an older release left it.
func open(ctx context.Context, o Options, steps []migration) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		dialector gorm.Dialector
		dialect   string
	)
	switch {
	case o.DatabaseURL != "":
		if !isPostgresDSN(o.DatabaseURL) {
			// The URL is not echoed: it may carry a password.
			return nil, errors.New("gormstore: open: DatabaseURL must be a postgres:// or postgresql:// URL or a keyword DSN")
		}
		dialector, dialect = postgres.Open(o.DatabaseURL), DialectPostgres
	case o.SQLitePath != "":
		dialector, dialect = sqlite.Open(sqliteDSN(o.SQLitePath)), DialectSQLite
	default:
		return nil, errors.New("gormstore: open: neither DatabaseURL nor SQLitePath is set")
	}

	db, err := gorm.Open(dialector, &gorm.Config{
		TranslateError: true,
		// Ping ourselves below, with the caller's context.
		DisableAutomaticPing: true,
		Logger:               newGormLogger(log),
		NowFunc:              func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("gormstore: open %s: %w", dialect, translate(err))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("gormstore: open %s: %w", dialect, err)
	}
	configurePool(sqlDB, dialect, o)

	s := &Store{db: db, dialect: dialect, log: log, dsn: o.DatabaseURL}
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if steps == nil {
		return s, nil // DryRun migrates inside its own, rolled-back transaction
	}
	if err := s.migrate(ctx, steps); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") ||
		(strings.Contains(dsn, "=") && !strings.Contains(dsn, "://"))
}

// sqliteDSN turns a file path into a glebarez/sqlite DSN with the pragmas
// Keygate relies on: enforced foreign keys, WAL so readers never block the
// writer, a busy timeout for the rare second process on the same file, and
// synchronous=NORMAL, which with WAL keeps the database consistent on a
// crash (it may lose the last commits) while sparing an fsync per commit.
func sqliteDSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
}

func configurePool(db *sql.DB, dialect string, o Options) {
	if dialect == DialectSQLite {
		// One connection: SQLite serialises writers anyway, and a second
		// connection is what produces "database is locked". Never recycle
		// it, or a ":memory:" database would vanish.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		return
	}
	maxOpen, maxIdle, life := o.MaxOpenConns, o.MaxIdleConns, o.ConnMaxLifetime
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpenConns
	}
	if maxIdle <= 0 {
		maxIdle = min(defaultMaxIdleConns, maxOpen)
	}
	if life <= 0 {
		life = defaultConnMaxLifetime
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxLifetime(life)
}

// Close closes the connection pool. It fails on a Store bound to a
// transaction, which does not own the pool.
func (s *Store) Close() error {
	if s.inTx {
		return errors.New("gormstore: close: store is bound to a transaction")
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("gormstore: close: %w", err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("gormstore: close: %w", err)
	}
	return nil
}

// Dialect reports "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// DB exposes the pool for statistics and metrics only; queries go through
// the Store's methods. It returns nil on a Store bound to a transaction.
func (s *Store) DB() *sql.DB {
	if s.inTx {
		return nil
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil
	}
	return sqlDB
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.WithContext(ctx).Exec("SELECT 1").Error; err != nil {
		return fmt.Errorf("gormstore: ping %s: %w", s.dialect, translate(err))
	}
	return nil
}

// Tx runs fn in one transaction with a Store bound to it. Inside a
// transaction it simply runs fn with the same Store (joining it). fn must
// use only the Store it is given: on SQLite the transaction holds the one
// connection, so a call on the outer Store would wait for it forever. On
// PostgreSQL a failed statement aborts the whole transaction, so fn should
// return once a store call fails.
func (s *Store) Tx(ctx context.Context, fn func(store.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	var fnErr error
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fnErr = fn(&Store{db: tx, dialect: s.dialect, log: s.log, dsn: s.dsn, inTx: true})
		return fnErr
	})
	if fnErr != nil {
		// The caller's own error comes back untouched.
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("gormstore: transaction: %w", translate(err))
	}
	return nil
}

// conn returns the handle for one operation, bound to ctx.
func (s *Store) conn(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// txn runs fn in a transaction; inside Tx it becomes a savepoint, so a
// failed operation rolls back only itself.
func (s *Store) txn(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// forUpdate locks the selected rows until the transaction ends. SQLite's
// dialect drops the clause; there the single connection serialises
// everything anyway.
func forUpdate(tx *gorm.DB) *gorm.DB {
	return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
}

// pageBounds applies the Page defaults: limit 25 when unset, at most 1000.
func pageBounds(p store.Page) (offset, limit int) {
	offset, limit = max(p.Offset, 0), p.Limit
	if limit <= 0 {
		limit = 25
	}
	return offset, min(limit, 1000)
}

// list counts the rows matching scope and loads one page of them.
func list[R any](ctx context.Context, s *Store, model *R, scope func(*gorm.DB) *gorm.DB, order string, p store.Page) ([]R, int64, error) {
	var total int64
	if err := scope(s.conn(ctx).Model(model)).Count(&total).Error; err != nil {
		return nil, 0, translate(err)
	}
	offset, limit := pageBounds(p)
	var rows []R
	if total == 0 || int64(offset) >= total {
		return rows, total, nil
	}
	if err := scope(s.conn(ctx).Model(model)).Order(order).Offset(offset).Limit(limit).Find(&rows).Error; err != nil {
		return nil, 0, translate(err)
	}
	return rows, total, nil
}

// likeContains builds a LIKE pattern matching s anywhere, with LIKE's
// wildcards escaped (used with ESCAPE '\').
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}
