package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// HoldBudgets implements store.BudgetHolds. On PostgreSQL the holders of
// one budget queue on a transaction-scoped advisory lock per budget (taken
// in sorted order, so holders of overlapping budget sets never deadlock),
// which every replica on the database shares; SQLite's single writer
// serialises them. The figures are read in one statement, so a spend write
// that adds a call's cost and deletes its hold in one commit is seen whole
// or not at all: the cost is never missing from both.
func (s *Store) HoldBudgets(ctx context.Context, h store.BudgetHold, admit func([]store.BudgetFigure) error) error {
	if h.ID == "" || len(h.Budgets) == 0 {
		return errors.New("gormstore: hold budgets: a hold needs an id and a budget")
	}
	ids := make([]string, len(h.Budgets))
	for i, b := range h.Budgets {
		ids[i] = b.ID
	}
	locks := slices.Compact(slices.Sorted(slices.Values(ids)))
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if s.dialect == DialectPostgres {
			// One statement takes every lock, left to right in sorted
			// order. Expired holds are not counted below; the renewers
			// delete them (RenewBudgetHolds).
			var q strings.Builder
			args := make([]any, len(locks))
			q.WriteString("SELECT ")
			for i, id := range locks {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("pg_advisory_xact_lock(hashtext('keygate_budget_holds:' || coalesce(current_schema(), '')), hashtext(?))")
				args[i] = id
			}
			if err := tx.Exec(q.String(), args...).Error; err != nil {
				return err
			}
		} else if err := tx.Where("budget_id IN ? AND expires_at <= ?", ids, dbTime(h.At)).Delete(&budgetHoldRow{}).Error; err != nil {
			// Forgetting expired holds first makes this a write
			// transaction from its first statement on SQLite, so the
			// figures below cannot go stale before the insert.
			return err
		}
		figures, err := budgetFigures(tx, h.Budgets, dbTime(h.At))
		if err != nil {
			return err
		}
		if err := admit(figures); err != nil {
			return err
		}
		rows := make([]budgetHoldRow, 0, len(locks))
		for _, id := range locks {
			rows = append(rows, budgetHoldRow{ID: h.ID, BudgetID: id, Amount: h.Amount, ExpiresAt: dbTime(h.Expires)})
		}
		return tx.Create(&rows).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: hold budgets: %w", translate(err))
	}
	return nil
}

// budgetFigures reads every budget's spend, holds in flight and settled
// holds in one SELECT of
// scalar subqueries (one snapshot on PostgreSQL's READ COMMITTED).
func budgetFigures(tx *gorm.DB, budgets []store.BudgetRef, now time.Time) ([]store.BudgetFigure, error) {
	var q strings.Builder
	args := make([]any, 0, 5*len(budgets))
	q.WriteString("SELECT ")
	for i, b := range budgets {
		if i > 0 {
			q.WriteString(", ")
		}
		switch b.Scope {
		case "key":
			q.WriteString("(SELECT spend FROM api_keys WHERE hash = ?)")
			args = append(args, b.KeyHash)
		case "user":
			q.WriteString("(SELECT spend FROM users WHERE id = ?)")
			args = append(args, b.UserID)
		case "team":
			q.WriteString("(SELECT spend FROM teams WHERE id = ?)")
			args = append(args, b.TeamID)
		case "team member":
			q.WriteString("(SELECT spend FROM memberships WHERE team_id = ? AND user_id = ?)")
			args = append(args, b.TeamID, b.UserID)
		default:
			return nil, fmt.Errorf("budget %q: unknown scope %q", b.ID, b.Scope)
		}
		q.WriteString(", (SELECT COALESCE(SUM(CASE WHEN settled THEN 0 ELSE amount END), 0) FROM budget_holds WHERE budget_id = ? AND expires_at > ?)")
		q.WriteString(", (SELECT COALESCE(SUM(CASE WHEN settled THEN amount ELSE 0 END), 0) FROM budget_holds WHERE budget_id = ? AND expires_at > ?)")
		args = append(args, b.ID, now, b.ID, now)
	}
	vals := make([]sql.NullFloat64, 3*len(budgets))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := tx.Raw(q.String(), args...).Row().Scan(dest...); err != nil {
		return nil, err
	}
	out := make([]store.BudgetFigure, len(budgets))
	for i := range out {
		out[i] = store.BudgetFigure{Spend: vals[3*i].Float64, Held: vals[3*i+1].Float64, Settled: vals[3*i+2].Float64}
	}
	return out, nil
}

// SettleBudgetHold implements store.BudgetHolds.
func (s *Store) SettleBudgetHold(ctx context.Context, id string, amount float64) error {
	err := s.conn(ctx).Model(&budgetHoldRow{}).Where("id = ?", id).
		UpdateColumns(map[string]any{"amount": amount, "settled": true}).Error
	if err != nil {
		return fmt.Errorf("gormstore: settle budget hold: %w", translate(err))
	}
	return nil
}

// ReleaseBudgetHolds implements store.BudgetHolds.
func (s *Store) ReleaseBudgetHolds(ctx context.Context, ids ...string) error {
	if err := deleteHolds(s.conn(ctx), ids); err != nil {
		return fmt.Errorf("gormstore: release budget holds: %w", translate(err))
	}
	return nil
}

// RenewBudgetHolds implements store.BudgetHolds.
func (s *Store) RenewBudgetHolds(ctx context.Context, now, until time.Time, ids ...string) error {
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("expires_at <= ?", dbTime(now)).Delete(&budgetHoldRow{}).Error; err != nil {
			return err
		}
		for chunk := range slices.Chunk(slices.Sorted(slices.Values(ids)), spendIDChunk) {
			err := tx.Model(&budgetHoldRow{}).Where("id IN ?", chunk).UpdateColumn("expires_at", dbTime(until)).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gormstore: renew budget holds: %w", translate(err))
	}
	return nil
}

// deleteHolds deletes the holds named, in sorted chunks (concurrent
// deleters lock rows in one order).
func deleteHolds(tx *gorm.DB, ids []string) error {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" })
	slices.Sort(ids)
	for chunk := range slices.Chunk(slices.Compact(ids), spendIDChunk) {
		if err := tx.Where("id IN ?", chunk).Delete(&budgetHoldRow{}).Error; err != nil {
			return err
		}
	}
	return nil
}
