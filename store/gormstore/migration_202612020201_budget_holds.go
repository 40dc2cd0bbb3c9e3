package gormstore

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Migration 202612020201_budget_holds adds the reservations forwarded calls
// hold against budgets, shared by every replica: one row per call and
// budget, holding the call's estimate while it runs and its real cost
// (settled) once it ended, deleted when its spend is recorded (in the same
// transaction) or when the call ends unbilled, and expiring unless its
// replica renews it, so a replica that dies does not keep its holds.

type m0201BudgetHold struct {
	ID        string    `gorm:"primaryKey"`
	BudgetID  string    `gorm:"column:budget_id;primaryKey"`
	Amount    float64   `gorm:"not null"`
	Settled   bool      `gorm:"not null;default:false"`
	ExpiresAt time.Time `gorm:"not null"`
}

func (m0201BudgetHold) TableName() string { return "budget_holds" }

func migrateBudgetHolds(tx *gorm.DB) error {
	if !tx.Migrator().HasTable(&m0201BudgetHold{}) {
		if err := tx.Migrator().CreateTable(&m0201BudgetHold{}); err != nil {
			return fmt.Errorf("create budget_holds: %w", err)
		}
	}
	for _, stmt := range []string{
		`CREATE INDEX IF NOT EXISTS budget_holds_budget_idx ON budget_holds (budget_id, expires_at)`,
		`CREATE INDEX IF NOT EXISTS budget_holds_expires_idx ON budget_holds (expires_at)`,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return fmt.Errorf("budget_holds index: %w", err)
		}
	}
	return nil
}
