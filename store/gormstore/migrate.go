package gormstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// migration is one step of the schema history. Steps are append-only:
// never edit or reorder a released one, add a new one instead. Each step
// uses row structs frozen in its own file, so later edits to the live row
// structs cannot change what an old step creates, and each step is
// idempotent so a half-applied history can be re-run.
type migration struct {
	id string // timestamp id, e.g. "202611270001_initial"; sorts by age
	up func(tx *gorm.DB) error
}

// migrations returns the schema history, oldest first.
func migrations() []migration {
	return []migration{
		{id: "202611270001_initial", up: migrateInitial},
		{id: "202611270002_invitation_purpose", up: migrateInvitationPurpose},
		{id: "202612010101_key_allowed_routes", up: migrateKeyAllowedRoutes},
		{id: healthMigration, up: migrateHealth},
		{id: "202612010301_login_attempts_index", up: migrateLoginAttemptsIndex},
		{id: "202612010401_scim_directory", up: migrateSCIMDirectory},
		{id: "202612010701_mfa", up: migrateMFA},
		{id: "202612020101_key_alias_per_owner", up: migrateKeyAliasPerOwner},
		{id: "202612020201_budget_holds", up: migrateBudgetHolds},
	}
}

// migrationRow records an applied step in keygate_migrations.
type migrationRow struct {
	ID        string    `gorm:"column:id;primaryKey"`
	AppliedAt time.Time `gorm:"column:applied_at;not null"`
}

func (migrationRow) TableName() string { return "keygate_migrations" }

// migrate applies the pending ones of steps (migrations(), or a prefix of
// it in tests that start from an older schema) in one transaction. On
// PostgreSQL an advisory lock, scoped to the current schema, makes
// replicas that start together take turns instead of racing to create the
// same tables.
func (s *Store) migrate(ctx context.Context, steps []migration) error {
	// Migrations are not bound by the statement timeout: they may wait
	// for another replica's migration, and a step may rewrite a big table.
	ctx = withoutTimeout(ctx)
	err := s.txn(ctx, func(tx *gorm.DB) error { // joins DryRun's transaction when bound to one
		if s.dialect == DialectPostgres {
			if err := tx.Exec("SET LOCAL statement_timeout = 0").Error; err != nil {
				return fmt.Errorf("lift statement timeout: %w", err)
			}
			if err := tx.Exec("SET LOCAL lock_timeout = 0").Error; err != nil {
				return fmt.Errorf("lift lock timeout: %w", err)
			}
			if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext('keygate_migrations:' || coalesce(current_schema(), '')))").Error; err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		} else {
			// Wait as long as another process needs (it may be migrating);
			// the bound is restored below.
			if err := tx.Exec("PRAGMA busy_timeout = 600000").Error; err != nil {
				return fmt.Errorf("lift busy timeout: %w", err)
			}
		}
		if !tx.Migrator().HasTable(&migrationRow{}) {
			if err := tx.Migrator().CreateTable(&migrationRow{}); err != nil {
				return fmt.Errorf("create keygate_migrations: %w", err)
			}
		}
		var applied []migrationRow
		if err := tx.Find(&applied).Error; err != nil {
			return fmt.Errorf("read keygate_migrations: %w", err)
		}
		done := make(map[string]bool, len(applied))
		for _, a := range applied {
			done[a.ID] = true
		}
		for _, m := range steps {
			if done[m.id] {
				continue
			}
			if err := m.up(tx); err != nil {
				return fmt.Errorf("%s: %w", m.id, err)
			}
			if err := tx.Create(&migrationRow{ID: m.id, AppliedAt: time.Now().UTC()}).Error; err != nil {
				return fmt.Errorf("%s: record: %w", m.id, err)
			}
			s.log.InfoContext(ctx, "applied database migration", "id", m.id, "dialect", s.dialect)
		}
		return nil
	})
	if s.dialect == DialectSQLite {
		// The writer is SQLite's only connection: the pragma set above
		// stays on it unless put back.
		if rerr := s.db.WithContext(ctx).Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", s.timeout.Milliseconds())).Error; rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("gormstore: migrate %s: %w", s.dialect, translate(err))
	}
	return nil
}
