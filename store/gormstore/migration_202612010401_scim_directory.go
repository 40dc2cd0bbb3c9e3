package gormstore

import (
	"fmt"

	"gorm.io/gorm"
)

// Migration 202612010401_scim_directory stores what SCIM provisioning
// needs: the identity provider's externalId of users and teams (indexed,
// SCIM clients look users up by it), the rest of a provisioned user's
// profile as JSON (directory), the user's directory e-mail addresses as
// "\n"-delimited lower-case text so that an emails filter is one indexed
// scan away from SQL (directory_emails), and which teams the identity
// provider manages. Plain SQL as in 0002; every column has a default, so
// existing rows read as "never provisioned".

func m0401Columns() [][3]string {
	return [][3]string{
		{"users", "external_id", `ALTER TABLE users ADD COLUMN external_id text NOT NULL DEFAULT ''`},
		{"users", "directory", `ALTER TABLE users ADD COLUMN directory text NOT NULL DEFAULT ''`},
		{"users", "directory_emails", `ALTER TABLE users ADD COLUMN directory_emails text NOT NULL DEFAULT ''`},
		{"teams", "external_id", `ALTER TABLE teams ADD COLUMN external_id text NOT NULL DEFAULT ''`},
		{"teams", "directory_managed", `ALTER TABLE teams ADD COLUMN directory_managed boolean NOT NULL DEFAULT false`},
	}
}

// m0401Indexes: lookups by externalId, and groups by display name (SCIM
// clients ask "displayName eq" before creating a group; names compare
// case-insensitively).
func m0401Indexes() []string {
	return []string{
		`CREATE INDEX IF NOT EXISTS users_external_id_idx ON users (external_id) WHERE external_id <> ''`,
		`CREATE INDEX IF NOT EXISTS teams_external_id_idx ON teams (external_id) WHERE external_id <> ''`,
		`CREATE INDEX IF NOT EXISTS teams_alias_lower_idx ON teams (lower(alias))`,
	}
}

func migrateSCIMDirectory(tx *gorm.DB) error {
	for _, c := range m0401Columns() {
		// Checked first so that re-running a half-applied history is harmless.
		if tx.Migrator().HasColumn(c[0], c[1]) {
			continue
		}
		if err := tx.Exec(c[2]).Error; err != nil {
			return fmt.Errorf("add %s.%s: %w", c[0], c[1], err)
		}
	}
	for _, q := range m0401Indexes() {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}
