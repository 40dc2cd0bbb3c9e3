package gormstore

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Migration 202612010201_health adds keygate_health, the one-row table the
// readiness write probe upserts (a database that answers reads but cannot
// write — a read-only file, a full disk — must not report ready).

// healthMigration is the step's id: the store probes writes only once
// the table exists.
const healthMigration = "202612010201_health"

type m0201Health struct {
	ID        int       `gorm:"column:id;primaryKey;autoIncrement:false"`
	CheckedAt time.Time `gorm:"column:checked_at;not null"`
}

func (m0201Health) TableName() string { return "keygate_health" }

func migrateHealth(tx *gorm.DB) error {
	if tx.Migrator().HasTable(&m0201Health{}) {
		return nil
	}
	if err := tx.Migrator().CreateTable(&m0201Health{}); err != nil {
		return fmt.Errorf("create keygate_health: %w", err)
	}
	return nil
}
