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
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
	// Timeout bounds every statement (default DefaultTimeout): on
	// PostgreSQL as the server's statement_timeout and lock_timeout, on
	// SQLite as the busy timeout, and on both as a client-side deadline,
	// so a locked table or a hung server costs a request this long and
	// then store.ErrUnavailable, never an unbounded wait. Migrations are
	// exempt.
	Timeout time.Duration
	// AcquireTimeout bounds the wait for a pooled connection (default
	// DefaultAcquireTimeout).
	AcquireTimeout time.Duration
	// ListenHeartbeat is how often an idle Listen checks its connection
	// and, when it answers, tells its caller store.ListenAlive (default
	// 30 s). A caller that must not trust a link that froze without
	// breaking sets it short.
	ListenHeartbeat time.Duration
}

// Store is the GORM implementation of store.Store. The zero value is not
// usable; call Open.
type Store struct {
	db *gorm.DB
	// rdb serves reads outside transactions. On SQLite it is a pool of
	// read-only connections beside the single writer, so that a write
	// waiting for a lock (held by another process, say) never queues the
	// reads behind it; WAL lets them read the last commit meanwhile.
	// Elsewhere (PostgreSQL, ":memory:", a Store bound to a transaction)
	// it is db.
	rdb     *gorm.DB
	dialect string
	log     *slog.Logger
	// dsn is the PostgreSQL URL/DSN, kept for Listen's dedicated
	// connection; empty on SQLite. It may hold a password: never log it.
	dsn string
	// inTx marks a Store bound to a transaction by Tx.
	inTx bool
	// keyAccessBatch runs GetKeyAccess on PostgreSQL outside transactions
	// (keyaccess_batch.go); nil elsewhere.
	keyAccessBatch *keyAccessBatcher
	// keyAccess holds GetKeyAccess's statement on SQLite, prepared at its
	// first successful use.
	keyAccess struct {
		mu   sync.Mutex
		stmt atomic.Pointer[sql.Stmt]
	}

	timeout, acquireTimeout time.Duration
	// probeTable: the schema has keygate_health for the write probe.
	probeTable bool
	// listenPause overrides Listen's reconnection backoff (min, max) in
	// tests; zero means the defaults.
	listenPause [2]time.Duration
	// wake cuts the listener's backoff short when a statement succeeds.
	wake *listenWake
	// heartbeat: Options.ListenHeartbeat or listenIdleCheck.
	heartbeat time.Duration
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
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AcquireTimeout <= 0 {
		o.AcquireTimeout = DefaultAcquireTimeout
	}
	var (
		dialector gorm.Dialector
		dialect   string
		reader    gorm.Dialector // SQLite's read-only pool; nil: none
	)
	switch {
	case o.DatabaseURL != "":
		if !isPostgresDSN(o.DatabaseURL) {
			// The URL is not echoed: it may carry a password.
			return nil, errors.New("gormstore: open: DatabaseURL must be a postgres:// or postgresql:// URL or a keyword DSN")
		}
		conn, err := postgresPool(o.DatabaseURL, o.Timeout)
		if err != nil {
			return nil, err
		}
		dialector, dialect = postgres.New(postgres.Config{Conn: conn}), DialectPostgres
	case o.SQLitePath != "":
		dialector, dialect = sqlite.Open(sqliteDSN(o.SQLitePath, o.Timeout, false)), DialectSQLite
		if !inMemory(o.SQLitePath) {
			reader = sqlite.Open(sqliteDSN(o.SQLitePath, o.Timeout, true))
		}
	default:
		return nil, errors.New("gormstore: open: neither DatabaseURL nor SQLitePath is set")
	}

	wake := newListenWake()
	db, err := openGorm(dialector, dialect, log, o.Timeout+o.AcquireTimeout, wake)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("gormstore: open %s: %w", dialect, err)
	}
	configurePool(sqlDB, dialect, o)

	s := &Store{db: db, rdb: db, dialect: dialect, log: log, dsn: o.DatabaseURL, timeout: o.Timeout, acquireTimeout: o.AcquireTimeout, wake: wake,
		heartbeat: cmp.Or(o.ListenHeartbeat, listenIdleCheck)}
	if dialect == DialectPostgres {
		s.keyAccessBatch = s.newKeyAccessBatcher(sqlDB.Stats().MaxOpenConnections)
	}
	if err := s.ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	// nil steps: DryRun migrates inside its own, rolled-back transaction.
	if steps != nil {
		if err := s.migrate(ctx, steps); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	// Tests may build an older schema, without the probe's table.
	s.probeTable = slices.ContainsFunc(steps, func(m migration) bool { return m.id == healthMigration })
	if reader != nil {
		// Opened after migrating, so readers see the final schema.
		rdb, err := openGorm(reader, dialect, log, o.Timeout+o.AcquireTimeout, wake)
		if err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		rsql, err := rdb.DB()
		if err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("gormstore: open %s readers: %w", dialect, err)
		}
		rsql.SetMaxOpenConns(sqliteReaders)
		rsql.SetMaxIdleConns(sqliteReaders)
		s.rdb = rdb
	}
	if err := s.probeWrite(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("gormstore: the database is not writable (read-only file or full disk?): %w", err)
	}
	return s, nil
}

// sqliteReaders is the size of SQLite's read-only pool.
const sqliteReaders = 4

func inMemory(path string) bool { return path == ":memory:" || strings.Contains(path, "mode=memory") }

func openGorm(d gorm.Dialector, dialect string, log *slog.Logger, bound time.Duration, wake *listenWake) (*gorm.DB, error) {
	db, err := gorm.Open(d, &gorm.Config{
		TranslateError: true,
		// Ping ourselves below, with the caller's context.
		DisableAutomaticPing: true,
		Logger:               newGormLogger(log),
		NowFunc:              func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("gormstore: open %s: %w", dialect, translate(err))
	}
	if err := boundStatements(db, bound, wake); err != nil {
		return nil, fmt.Errorf("gormstore: open %s: %w", dialect, err)
	}
	return db, nil
}

// postgresPool opens a database/sql pool on pgx whose sessions carry the
// statement bound as server settings: statement_timeout stops a statement
// the server is slow to run, lock_timeout one waiting for a lock (the
// server then answers with an error and the connection stays usable).
// Settings given in the URL win.
func postgresPool(dsn string, timeout time.Duration) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password in parse errors.
		return nil, fmt.Errorf("gormstore: open postgres: %w", err)
	}
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	for _, k := range []string{"statement_timeout", "lock_timeout"} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = ms
		}
	}
	return stdlib.OpenDB(*cfg), nil
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") ||
		(strings.Contains(dsn, "=") && !strings.Contains(dsn, "://"))
}

// sqliteDSN turns a file path into a glebarez/sqlite DSN with the pragmas
// Keygate relies on: enforced foreign keys, WAL so readers never block the
// writer, a busy timeout (the statement bound) for another process holding
// the lock, and synchronous=NORMAL, which with WAL keeps the database
// consistent on a crash (it may lose the last commits) while sparing an
// fsync per commit. Reader connections are query_only.
func sqliteDSN(path string, busy time.Duration, readOnly bool) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	dsn := path + sep + "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(" +
		strconv.FormatInt(busy.Milliseconds(), 10) + ")&_pragma=synchronous(NORMAL)"
	if readOnly {
		dsn += "&_pragma=query_only(1)"
	}
	return dsn
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

// Close closes the connection pools. It fails on a Store bound to a
// transaction, which does not own the pool.
func (s *Store) Close() error {
	if s.inTx {
		return errors.New("gormstore: close: store is bound to a transaction")
	}
	pools := []*gorm.DB{s.db}
	if s.rdb != s.db {
		pools = append(pools, s.rdb)
	}
	var errs []error
	for _, db := range pools {
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
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

// Ping checks that the database answers and can be written: on SQLite it
// writes a row (a read-only file or a full disk fails it), on PostgreSQL
// it refuses a server in recovery (a read-only standby). Readiness uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ping(ctx); err != nil {
		return err
	}
	return s.probeWrite(ctx)
}

// ping checks only that the database answers.
func (s *Store) ping(ctx context.Context) error {
	if err := s.db.WithContext(ctx).Exec("SELECT 1").Error; err != nil {
		return fmt.Errorf("gormstore: ping %s: %w", s.dialect, translate(err))
	}
	return nil
}

// probeWrite checks that the database accepts writes.
func (s *Store) probeWrite(ctx context.Context) error {
	if s.dialect == DialectPostgres {
		// Raw+Scan runs outside the bounded callbacks; bound it here.
		ctx, cancel := context.WithTimeout(ctx, s.timeout+s.acquireTimeout)
		defer cancel()
		var standby bool
		if err := s.db.WithContext(ctx).Raw("SELECT pg_is_in_recovery()").Scan(&standby).Error; err != nil {
			return fmt.Errorf("gormstore: ping %s: %w", s.dialect, translate(err))
		}
		if standby {
			return fmt.Errorf("gormstore: ping %s: the server is a read-only standby: %w", s.dialect, store.ErrNotWritable)
		}
		return nil
	}
	if !s.probeTable {
		return nil
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"checked_at"})}).
		Create(&healthRow{ID: 1, CheckedAt: dbTime(time.Now())}).Error
	if err != nil {
		return fmt.Errorf("gormstore: write probe %s: %w", s.dialect, translate(err))
	}
	return nil
}

// Tx runs fn in one transaction with a Store bound to it. Inside a
// transaction it simply runs fn with the same Store (joining it). fn must
// use only the Store it is given: on SQLite the transaction holds the one
// writer connection, so a write on the outer Store would wait for it. On
// PostgreSQL a failed statement aborts the whole transaction, so fn should
// return once a store call fails.
func (s *Store) Tx(ctx context.Context, fn func(store.Store) error) error {
	if s.inTx {
		return fn(s)
	}
	var fnErr error
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		fnErr = fn(s.bound(tx))
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

// bound returns a Store bound to the transaction tx.
func (s *Store) bound(tx *gorm.DB) *Store {
	return &Store{db: tx, rdb: tx, dialect: s.dialect, log: s.log, dsn: s.dsn, inTx: true, timeout: s.timeout,
		acquireTimeout: s.acquireTimeout, probeTable: s.probeTable, wake: s.wake}
}

// conn returns the handle for one write, bound to ctx.
func (s *Store) conn(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// read returns the handle for one read, bound to ctx (the reader pool
// outside transactions).
func (s *Store) read(ctx context.Context) *gorm.DB { return s.rdb.WithContext(ctx) }

// txn runs fn in a transaction; inside Tx it becomes a savepoint, so a
// failed operation rolls back only itself.
func (s *Store) txn(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.inTx {
		return s.db.WithContext(ctx).Transaction(fn)
	}
	return s.transaction(ctx, fn)
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
	if err := scope(s.read(ctx).Model(model)).Count(&total).Error; err != nil {
		return nil, 0, translate(err)
	}
	offset, limit := pageBounds(p)
	var rows []R
	if total == 0 || int64(offset) >= total {
		return rows, total, nil
	}
	if err := scope(s.read(ctx).Model(model)).Order(order).Offset(offset).Limit(limit).Find(&rows).Error; err != nil {
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

// orderSQL is the ORDER BY of a listing: the column expression cols maps
// o.By to (fixed SQL, never the caller's string), then the tie-breaker
// key, both in o's direction; def when o.By is not in cols. An expression
// may start with a "nulls/blank last" term of its own, which keeps its
// direction either way.
func orderSQL(o store.Order, cols map[string][2]string, key, def string) string {
	c, ok := cols[o.By]
	if !ok {
		return def
	}
	dir := " ASC"
	if o.Desc {
		dir = " DESC"
	}
	if c[0] != "" {
		return c[0] + ", " + c[1] + dir + ", " + key + dir
	}
	return c[1] + dir + ", " + key + dir
}

// ownerOrEmail matches column against a user id or part of a user's
// e-mail, as listings show owners and actors by e-mail.
func (s *Store) ownerOrEmail(q *gorm.DB, column, v string) *gorm.DB {
	sub := s.rdb.Model(&userRow{}).Select("id").Where(`email_lower LIKE ? ESCAPE '\'`, likeContains(strings.ToLower(v)))
	return q.Where(column+" = ? OR "+column+" IN (?)", v, sub)
}
