package gormstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/keygate/keygate/store"
)

func spendToRow(e store.SpendEntry) spendRow {
	return spendRow{
		RequestID: e.RequestID, KeyHash: e.KeyHash, UserID: e.UserID, TeamID: e.TeamID, Model: e.Model,
		PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens, Spend: e.Spend,
		CreatedAt: dbTime(e.CreatedAt),
	}
}

func rowToSpend(r spendRow) store.SpendEntry {
	return store.SpendEntry{
		RequestID: r.RequestID, KeyHash: r.KeyHash, UserID: r.UserID, TeamID: r.TeamID, Model: r.Model,
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, Spend: r.Spend,
		CreatedAt: goTime(r.CreatedAt),
	}
}

// RecordSpend inserts e and adds its spend to the running totals in one
// transaction. The insert comes first so a duplicate request id fails
// before any total moves. Totals are bumped in SQL (spend = spend + ?),
// never read-modify-written, so concurrent requests add up exactly; rows
// are touched users → teams → memberships → keys, the lock order every
// multi-row operation here follows.
func (s *Store) RecordSpend(ctx context.Context, e store.SpendEntry) error {
	if e.RequestID == "" {
		return errors.New("gormstore: record spend: empty request id")
	}
	row := spendToRow(e)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if e.Spend == 0 {
			return nil
		}
		add := gorm.Expr("spend + ?", e.Spend)
		if e.UserID != "" {
			if err := tx.Model(&userRow{}).Where("id = ?", e.UserID).UpdateColumn("spend", add).Error; err != nil {
				return err
			}
		}
		if e.TeamID != "" {
			if err := tx.Model(&teamRow{}).Where("id = ?", e.TeamID).UpdateColumn("spend", add).Error; err != nil {
				return err
			}
			if e.UserID != "" {
				err := tx.Model(&membershipRow{}).Where("team_id = ? AND user_id = ?", e.TeamID, e.UserID).
					UpdateColumn("spend", add).Error
				if err != nil {
					return err
				}
			}
		}
		if e.KeyHash != "" {
			if err := tx.Model(&keyRow{}).Where("hash = ?", e.KeyHash).UpdateColumn("spend", add).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gormstore: record spend %q: %w", e.RequestID, translate(err))
	}
	return nil
}

// ListSpend returns one page ordered by (created_at, request_id) and the
// total. Since is inclusive, Until exclusive.
func (s *Store) ListSpend(ctx context.Context, f store.SpendFilter) ([]store.SpendEntry, int64, error) {
	scope := func(q *gorm.DB) *gorm.DB {
		if f.UserID != "" {
			q = q.Where("user_id = ?", f.UserID)
		}
		if f.KeyHash != "" {
			q = q.Where("key_hash = ?", f.KeyHash)
		}
		if f.TeamID != "" {
			q = q.Where("team_id = ?", f.TeamID)
		}
		if f.RequestID != "" {
			q = q.Where("request_id = ?", f.RequestID)
		}
		if f.Since != nil {
			q = q.Where("created_at >= ?", dbTime(*f.Since))
		}
		if f.Until != nil {
			q = q.Where("created_at < ?", dbTime(*f.Until))
		}
		return q
	}
	rows, total, err := list(ctx, s, &spendRow{}, scope, "created_at, request_id", f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list spend: %w", err)
	}
	out := make([]store.SpendEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, rowToSpend(r))
	}
	return out, total, nil
}
