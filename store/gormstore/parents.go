package gormstore

import (
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/keygate/keygate/store"
)

// holdParents is called in the transaction that adds a row naming a user
// or a team (a key, a membership, an invitation, a session, an MFA
// factor), before the row is written. It takes a KEY SHARE lock on the
// user's and the team's rows, users first as everywhere. DeleteUser and
// DeleteTeam lock their row FOR UPDATE before deleting its children, so
// the two transactions are ordered: if the delete went first, the parent
// is gone and the add fails with store.ErrNotFound; otherwise the delete
// waits for the add to commit and then deletes what it added. Without the
// lock, PostgreSQL (read committed) let both commit and left, for example,
// a key of a deleted team that came back to life when a team of the same
// id was created again. KEY SHARE does not conflict with the plain
// UPDATEs that record spend. SQLite's dialect drops the clause; there the
// one writer serialises everything, and the existence check remains.
func holdParents(tx *gorm.DB, userID, teamID string) error {
	if userID != "" {
		if err := holdRow(tx, "users", userID); err != nil {
			return fmt.Errorf("user %q: %w", userID, err)
		}
	}
	if teamID != "" {
		if err := holdRow(tx, "teams", teamID); err != nil {
			return fmt.Errorf("team %q: %w", teamID, err)
		}
	}
	return nil
}

func holdRow(tx *gorm.DB, table, id string) error {
	var ids []string
	err := tx.Table(table).Clauses(clause.Locking{Strength: "KEY SHARE"}).
		Where("id = ?", id).Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return store.ErrNotFound
	}
	return nil
}
