package gormstore

import (
	"fmt"

	"gorm.io/gorm"
)

// Migration 202612010101_key_allowed_routes gives keys LiteLLM's
// allowed_routes: the routes (exact, prefix, wildcard or route group) a key
// may call, enforced by the access decision for every role. Stored as a
// JSON list like models; '' means no limit.

const m0101AddAllowedRoutes = `ALTER TABLE api_keys ADD COLUMN allowed_routes text NOT NULL DEFAULT ''`

func migrateKeyAllowedRoutes(tx *gorm.DB) error {
	if tx.Migrator().HasColumn("api_keys", "allowed_routes") {
		return nil
	}
	if err := tx.Exec(m0101AddAllowedRoutes).Error; err != nil {
		return fmt.Errorf("add api_keys.allowed_routes: %w", err)
	}
	return nil
}
