package gormstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

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
		if err := deleteHolds(tx, []string{e.HoldID}); err != nil {
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

// spendIDChunk bounds the ids in one IN list (SQLite allows 32766
// parameters, PostgreSQL 65535).
const spendIDChunk = 500

// RecordSpendBatch implements store.Spend's group commit: one read of the
// ids already stored, one multi-row insert, and one running-total update
// per user, team, membership and key (in that order, each sorted, the lock
// order every multi-row operation here follows, so concurrent batches on
// several replicas never deadlock).
func (s *Store) RecordSpendBatch(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	if len(es) == 0 {
		return nil, nil
	}
	for _, e := range es {
		if e.RequestID == "" {
			return nil, errors.New("gormstore: record spend batch: empty request id")
		}
	}
	var done []store.SpendEntry
	err := s.txn(ctx, func(tx *gorm.DB) error {
		done = done[:0]
		ids := make([]string, 0, 2*len(es))
		for _, e := range es {
			ids = append(ids, e.RequestID, derivedSpendID(e))
		}
		taken := make(map[string]spendRow, len(ids))
		for chunk := range slices.Chunk(ids, spendIDChunk) {
			var rows []spendRow
			if err := tx.Where("request_id IN ?", chunk).Find(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				taken[r.RequestID] = r
			}
		}
		var rows []spendRow
		for _, e := range es {
			row := spendToRow(e)
			for _, id := range []string{e.RequestID, derivedSpendID(e)} {
				row.RequestID = id
				prev, ok := taken[id]
				if !ok {
					taken[id] = row
					rows = append(rows, row)
					e.RequestID = id
					done = append(done, e)
					break
				}
				if sameSpend(prev, row) {
					break // already stored: a replay
				}
				if id != e.RequestID {
					// Both the id and its derivation hold other content:
					// only an id crafted to collide gets here.
					return fmt.Errorf("request id %q and its derived id are taken by other entries: %w", e.RequestID, store.ErrConflict)
				}
			}
		}
		// The calls' holds end with their recording (a replayed entry's
		// too: its hold may have been renewed meanwhile).
		holds := make([]string, 0, len(es))
		for _, e := range es {
			holds = append(holds, e.HoldID)
		}
		if err := deleteHolds(tx, holds); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := tx.CreateInBatches(rows, 200).Error; err != nil {
			return err
		}
		return addSpendTotals(tx, rows)
	})
	if err != nil {
		return nil, fmt.Errorf("gormstore: record spend batch of %d: %w", len(es), translate(err))
	}
	return done, nil
}

// addSpendTotals adds the rows' spend to the running totals, one update
// per row touched.
func addSpendTotals(tx *gorm.DB, rows []spendRow) error {
	type member struct{ team, user string }
	users, teams, keys := map[string]float64{}, map[string]float64{}, map[string]float64{}
	members := map[member]float64{}
	for _, r := range rows {
		if r.Spend == 0 {
			continue
		}
		if r.UserID != "" {
			users[r.UserID] += r.Spend
		}
		if r.TeamID != "" {
			teams[r.TeamID] += r.Spend
			if r.UserID != "" {
				members[member{r.TeamID, r.UserID}] += r.Spend
			}
		}
		if r.KeyHash != "" {
			keys[r.KeyHash] += r.Spend
		}
	}
	add := func(model any, where string, sums map[string]float64) error {
		for _, id := range slices.Sorted(maps.Keys(sums)) {
			if err := tx.Model(model).Where(where, id).UpdateColumn("spend", gorm.Expr("spend + ?", sums[id])).Error; err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(&userRow{}, "id = ?", users); err != nil {
		return err
	}
	if err := add(&teamRow{}, "id = ?", teams); err != nil {
		return err
	}
	ms := slices.SortedFunc(maps.Keys(members), func(a, b member) int {
		return cmp.Or(cmp.Compare(a.team, b.team), cmp.Compare(a.user, b.user))
	})
	for _, m := range ms {
		err := tx.Model(&membershipRow{}).Where("team_id = ? AND user_id = ?", m.team, m.user).
			UpdateColumn("spend", gorm.Expr("spend + ?", members[m])).Error
		if err != nil {
			return err
		}
	}
	return add(&keyRow{}, "hash = ?", keys)
}

// derivedSpendID is the id an entry is stored under when an upstream
// reused its response id: the id plus a digest of the entry's content, so
// that writing the same entry again finds it.
func derivedSpendID(e store.SpendEntry) string {
	r := spendToRow(e)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%x\x00%d", r.KeyHash, r.UserID, r.TeamID, r.Model,
		r.PromptTokens, r.CompletionTokens, math.Float64bits(r.Spend), r.CreatedAt.UnixMicro())
	return e.RequestID + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// sameSpend reports whether two rows record the same request.
func sameSpend(a, b spendRow) bool {
	return a.KeyHash == b.KeyHash && a.UserID == b.UserID && a.TeamID == b.TeamID && a.Model == b.Model &&
		a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens && a.Spend == b.Spend &&
		goTime(a.CreatedAt).Equal(goTime(b.CreatedAt))
}
