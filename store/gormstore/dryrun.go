package gormstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/keygate/keygate/store"
)

// DryRun gives fn the database o selects, as Open would, and then undoes
// everything: pending migrations and whatever fn writes run in one
// transaction that is always rolled back (PostgreSQL and SQLite both roll
// back DDL). A SQLite file that does not exist is not created: fn gets an
// empty in-memory database instead. So `--dry-run` commands see exactly
// what the real run would, and leave the target as they found it.
func DryRun(ctx context.Context, o Options, fn func(store.Store) error) error {
	if o.DatabaseURL == "" && o.SQLitePath != "" && o.SQLitePath != ":memory:" {
		if _, err := os.Stat(o.SQLitePath); errors.Is(err, fs.ErrNotExist) {
			o.SQLitePath = ":memory:"
		}
	}
	s, err := open(ctx, o, nil)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return fmt.Errorf("gormstore: dry run: begin: %w", translate(tx.Error))
	}
	defer tx.Rollback()
	ts := s.bound(tx)
	if err := ts.migrate(ctx, migrations()); err != nil {
		return err
	}
	return fn(ts)
}
