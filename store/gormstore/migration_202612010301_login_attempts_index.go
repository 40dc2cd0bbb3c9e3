package gormstore

import (
	"fmt"

	"gorm.io/gorm"
)

// Migration 202612010301_login_attempts_index indexes login_failures by
// (subject, at): every login now counts its subject's window before the
// password is checked, inside a lock, so the count must not scan the
// table.
func migrateLoginAttemptsIndex(tx *gorm.DB) error {
	if err := tx.Exec(`CREATE INDEX IF NOT EXISTS login_failures_subject_idx ON login_failures (subject, at)`).Error; err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}
