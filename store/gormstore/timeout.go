package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Defaults for Options.Timeout and Options.AcquireTimeout: short enough
// that a locked table or a hung server turns into a prompt 503 on the hot
// path, long enough for any statement Keygate runs.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultAcquireTimeout = 2 * time.Second
)

// unbounded marks a context whose statements get no deadline (migrations,
// which may wait for another replica's migration lock).
type unbounded struct{}

func withoutTimeout(ctx context.Context) context.Context {
	return context.WithValue(ctx, unbounded{}, true)
}

func isUnbounded(ctx context.Context) bool { v, _ := ctx.Value(unbounded{}).(bool); return v }

const cancelKey = "keygate:cancel"

// boundCtx is what the before callback leaves for the after callback.
type boundCtx struct {
	parent context.Context
	cancel context.CancelFunc
}

// boundStatements gives every statement GORM runs on db a client-side
// deadline of acquire + statement timeout: waiting for a pooled connection
// and running the statement (on PostgreSQL the server enforces the
// statement and lock timeouts itself and the client deadline is the
// backstop for a server that does not answer at all). Writes outside a
// transaction run in GORM's implicit transaction, which is inside the
// bound too.
//
// A statement that succeeds while the notification listener is
// disconnected also wakes it (w): the database is back.
func boundStatements(db *gorm.DB, d time.Duration, w *listenWake) error {
	before := func(tx *gorm.DB) {
		ctx := tx.Statement.Context
		if ctx == nil || isUnbounded(ctx) {
			return
		}
		bctx, cancel := context.WithTimeout(ctx, d)
		tx.Statement.Context = bctx
		tx.InstanceSet(cancelKey, boundCtx{parent: ctx, cancel: cancel})
	}
	after := func(tx *gorm.DB) {
		v, _ := tx.InstanceGet(cancelKey)
		if b, ok := v.(boundCtx); ok {
			// Put the caller's context back: GORM reuses the statement
			// for the next batch of CreateInBatches, which must not
			// inherit this one's finished deadline.
			b.cancel()
			tx.Statement.Context = b.parent
			tx.InstanceSet(cancelKey, nil)
		}
		if tx.Error == nil && w.down.Load() {
			w.poke()
		}
	}
	cb := db.Callback()
	errs := []error{
		cb.Create().Before("gorm:begin_transaction").Register("keygate:bound_create", before),
		cb.Create().After("gorm:commit_or_rollback_transaction").Register("keygate:unbound_create", after),
		cb.Update().Before("gorm:begin_transaction").Register("keygate:bound_update", before),
		cb.Update().After("gorm:commit_or_rollback_transaction").Register("keygate:unbound_update", after),
		cb.Delete().Before("gorm:begin_transaction").Register("keygate:bound_delete", before),
		cb.Delete().After("gorm:commit_or_rollback_transaction").Register("keygate:unbound_delete", after),
		cb.Query().Before("gorm:query").Register("keygate:bound_query", before),
		cb.Query().After("gorm:after_query").Register("keygate:unbound_query", after),
		cb.Raw().Before("gorm:raw").Register("keygate:bound_raw", before),
		cb.Raw().After("gorm:raw").Register("keygate:unbound_raw", after),
		// Row is not bounded here: its rows are read after the callback
		// chain ends, so a cancel there would cut them. The store does not
		// use Row or Rows.
	}
	return errors.Join(errs...)
}

// transaction runs fn in a transaction on the writer pool with every wait
// bounded: the connection is taken within AcquireTimeout, each statement
// is bounded by the callbacks above, and BEGIN and COMMIT each get the
// statement bound (through the transaction's context, which is the only
// handle database/sql gives on them). On failure or panic it rolls back.
func (s *Store) transaction(ctx context.Context, fn func(tx *gorm.DB) error) (err error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	txCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := s.acquire(txCtx, sqlDB)
	if err != nil {
		return err
	}
	// The connection goes back to the pool; a close error (a connection
	// already broken) has nothing left to report.
	defer func() { _ = conn.Close() }()
	base := s.db.Session(&gorm.Session{Context: txCtx, NewDB: true})
	base.Statement.ConnPool = conn
	var tx *gorm.DB
	if err := s.bounded(txCtx, cancel, func() error { tx = base.Begin(); return tx.Error }); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = s.bounded(txCtx, cancel, func() error { return tx.Rollback().Error })
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	return s.bounded(txCtx, cancel, func() error { return tx.Commit().Error })
}

// acquire takes a connection from the pool within AcquireTimeout.
func (s *Store) acquire(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	if isUnbounded(ctx) {
		return db.Conn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, s.acquireTimeout)
	defer cancel()
	conn, err := db.Conn(actx)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("no database connection free within %s: %w", s.acquireTimeout, errTimeout)
		}
		return nil, err
	}
	return conn, nil
}

// bounded runs op (BEGIN or COMMIT) and cancels the transaction's context
// should it take longer than the statement bound.
func (s *Store) bounded(ctx context.Context, cancel context.CancelFunc, op func() error) error {
	if isUnbounded(ctx) {
		return op()
	}
	t := time.AfterFunc(s.timeout+s.acquireTimeout, cancel)
	err := op()
	if !t.Stop() && err != nil {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	return err
}

// errTimeout marks a bound this package imposed running out; translate
// turns it into store.ErrUnavailable.
var errTimeout = errors.New("database did not answer in time")

// listenWake lets a successful statement cut the notification listener's
// reconnection backoff short.
type listenWake struct {
	down atomic.Bool // the listener is disconnected
	ch   chan struct{}
}

func newListenWake() *listenWake { return &listenWake{ch: make(chan struct{}, 1)} }

// databaseAnswered cuts the listener's backoff short if it is waiting:
// for statements that bypass GORM's callbacks.
func (s *Store) databaseAnswered() {
	if s.wake != nil && s.wake.down.Load() {
		s.wake.poke()
	}
}

func (w *listenWake) poke() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}
