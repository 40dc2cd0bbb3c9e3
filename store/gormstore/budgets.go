package gormstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

// maxResetSteps bounds how often next is applied to one row. A short
// period left unreset for a long time (a one-minute budget after a year
// offline is ~500k steps) is instead re-anchored at now: the phase shifts,
// but the job neither stalls nor spins.
const maxResetSteps = 10_000

// updateChunk caps the ids in one "IN (...)" list, well below SQLite's
// bound-parameter limit.
const updateChunk = 500

// budgetTable describes one table with a budget period.
type budgetTable struct {
	name  string // table
	idCol string // primary key column
}

// dueRow is one row whose budget period has ended.
type dueRow struct {
	ID             string
	BudgetDuration string
	BudgetResetAt  *time.Time
}

// ResetDueBudgets zeroes the spend of every key, user and team whose
// BudgetResetAt is at or before now, and of the memberships of every team
// it resets, and moves BudgetResetAt past now with next (nil when next
// gives up). It returns the reset key hashes and user ids, sorted. One
// transaction (a savepoint inside Tx). On PostgreSQL the due rows are
// locked and re-checked, so replicas running the job at once reset each
// row once.
func (s *Store) ResetDueBudgets(ctx context.Context, now time.Time, next func(duration string, from time.Time) time.Time) (store.BudgetResets, error) {
	if next == nil {
		return store.BudgetResets{}, errors.New("gormstore: reset due budgets: nil next func")
	}
	nowDB := dbTime(now)
	var userIDs, teamIDs, keyHashes []string
	// Lock order users → teams → memberships → keys, as in RecordSpend, so
	// a reset and concurrent spend never deadlock.
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var err error
		if userIDs, err = resetTable(tx, budgetTable{"users", "id"}, nowDB, next); err != nil {
			return err
		}
		if teamIDs, err = resetTable(tx, budgetTable{"teams", "id"}, nowDB, next); err != nil {
			return err
		}
		for chunk := range slices.Chunk(teamIDs, updateChunk) {
			if err := tx.Table("memberships").Where("team_id IN ?", chunk).UpdateColumn("spend", 0).Error; err != nil {
				return err
			}
		}
		keyHashes, err = resetTable(tx, budgetTable{"api_keys", "hash"}, nowDB, next)
		return err
	})
	if err != nil {
		return store.BudgetResets{}, fmt.Errorf("gormstore: reset due budgets: %w", translate(err))
	}
	return store.BudgetResets{KeyHashes: keyHashes, UserIDs: userIDs, TeamIDs: teamIDs}, nil
}

// resetTable resets the due rows of one table and returns their ids,
// sorted bytewise (the database's collation may order differently).
func resetTable(tx *gorm.DB, t budgetTable, now time.Time, next func(string, time.Time) time.Time) ([]string, error) {
	var due []dueRow
	err := forUpdate(tx.Table(t.name)).
		Select(t.idCol+" AS id, budget_duration, budget_reset_at").
		Where("budget_reset_at IS NOT NULL AND budget_reset_at <= ?", now).
		Order(t.idCol).
		Find(&due).Error
	if err != nil {
		return nil, fmt.Errorf("select due %s: %w", t.name, err)
	}
	if len(due) == 0 {
		return nil, nil
	}
	// Rows sharing a new reset time (the common case: same period, same
	// anchor) are updated together.
	type target struct {
		set    bool
		micros int64
	}
	groups := map[target][]string{}
	var order []target // first-seen order keeps the statements deterministic
	ids := make([]string, 0, len(due))
	for _, r := range due {
		ids = append(ids, r.ID)
		var tg target
		if at, ok := nextReset(r.BudgetDuration, goTime(*r.BudgetResetAt), now, next); ok {
			tg = target{set: true, micros: at.UnixMicro()}
		}
		if _, seen := groups[tg]; !seen {
			order = append(order, tg)
		}
		groups[tg] = append(groups[tg], r.ID)
	}
	for _, tg := range order {
		var resetAt any // nil writes NULL
		if tg.set {
			resetAt = time.UnixMicro(tg.micros).UTC()
		}
		for chunk := range slices.Chunk(groups[tg], updateChunk) {
			err := tx.Table(t.name).Where(t.idCol+" IN ?", chunk).
				UpdateColumns(map[string]any{"spend": 0, "budget_reset_at": resetAt}).Error
			if err != nil {
				return nil, fmt.Errorf("reset %s: %w", t.name, err)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// nextReset applies next from the old reset time until the result is
// after now. ok is false when next gives up (zero time) or stops moving
// forward; the row then stops resetting instead of looping for ever.
func nextReset(duration string, from, now time.Time, next func(string, time.Time) time.Time) (time.Time, bool) {
	at := from
	for range maxResetSteps {
		n := next(duration, at)
		if n.IsZero() || !dbTime(n).After(dbTime(at)) {
			return time.Time{}, false
		}
		at = dbTime(n)
		if at.After(now) {
			return at, true
		}
	}
	// Too many periods behind: start a fresh period from now.
	n := next(duration, now)
	if n.IsZero() || !dbTime(n).After(now) {
		return time.Time{}, false
	}
	return dbTime(n), true
}
