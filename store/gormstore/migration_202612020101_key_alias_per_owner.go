package gormstore

import (
	"fmt"

	"gorm.io/gorm"
)

// Migration 202612020101_key_alias_per_owner makes a key's alias unique
// per owner instead of across all keys: people name keys "laptop" or
// "ci", and one user's name must neither block another's nor reveal that
// it exists. Ownerless (service) keys share the owner "". Every database
// that held the old, stricter index already satisfies the new one, so the
// step only swaps the indexes.
func migrateKeyAliasPerOwner(tx *gorm.DB) error {
	for _, stmt := range []string{
		`DROP INDEX IF EXISTS api_keys_alias_key`,
		`CREATE UNIQUE INDEX IF NOT EXISTS api_keys_owner_alias_key ON api_keys (user_id, alias) WHERE alias <> ''`,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return fmt.Errorf("key alias index: %w", err)
		}
	}
	return nil
}
