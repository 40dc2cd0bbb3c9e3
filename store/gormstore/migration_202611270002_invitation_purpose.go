package gormstore

import (
	"fmt"

	"gorm.io/gorm"
)

// Migration 202611270002_invitation_purpose lets password-reset tokens
// live in the invitations table. Existing rows were all invitations, so
// the column's default fills them with 'invitation'. Plain SQL, not a row
// struct, because the step only alters one table; both dialects accept it,
// and SQLite allows ADD COLUMN ... NOT NULL because there is a default.

const m0002AddPurpose = `ALTER TABLE invitations ADD COLUMN purpose text NOT NULL DEFAULT 'invitation'`

// m0002Indexes replaces invitations_user_idx with (user_id, purpose): it
// serves both the per-user lookups and the per-purpose supersede delete,
// and one index is cheaper to keep up than two.
func m0002Indexes() []string {
	return []string{
		`CREATE INDEX IF NOT EXISTS invitations_user_purpose_idx ON invitations (user_id, purpose)`,
		`DROP INDEX IF EXISTS invitations_user_idx`,
	}
}

func migrateInvitationPurpose(tx *gorm.DB) error {
	// Checked first so that re-running a half-applied history is harmless.
	if !tx.Migrator().HasColumn("invitations", "purpose") {
		if err := tx.Exec(m0002AddPurpose).Error; err != nil {
			return fmt.Errorf("add invitations.purpose: %w", err)
		}
	}
	for _, q := range m0002Indexes() {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}
