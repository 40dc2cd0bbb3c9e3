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

// Key hashes are left out of error messages: a hash is not the key, but
// it is what identifies one in the database and has no place in logs.

func keyToRow(k store.Key) (keyRow, error) {
	md, err := encodeMap(k.Metadata, "metadata")
	if err != nil {
		return keyRow{}, err
	}
	return keyRow{
		Hash: k.Hash, KeyName: k.KeyName, Alias: k.Alias, UserID: k.UserID, TeamID: k.TeamID,
		Models: encodeStrings(k.Models), AllowedRoutes: encodeStrings(k.AllowedRoutes), MaxBudget: k.MaxBudget, BudgetDuration: k.BudgetDuration,
		BudgetResetAt: dbTimePtr(k.BudgetResetAt), Spend: k.Spend, TPMLimit: k.TPMLimit, RPMLimit: k.RPMLimit,
		Blocked: k.Blocked, ExpiresAt: dbTimePtr(k.ExpiresAt), KeyType: k.KeyType, Metadata: md,
		CreatedBy: k.CreatedBy, CreatedAt: dbTime(k.CreatedAt), UpdatedAt: dbTime(k.UpdatedAt),
		LastActive: dbTimePtr(k.LastActive),
	}, nil
}

func rowToKey(r keyRow) (store.Key, error) {
	models, err := decodeStrings(r.Models, "models")
	if err != nil {
		return store.Key{}, err
	}
	routes, err := decodeStrings(r.AllowedRoutes, "allowed_routes")
	if err != nil {
		return store.Key{}, err
	}
	md, err := decodeMap(r.Metadata, "metadata")
	if err != nil {
		return store.Key{}, err
	}
	return store.Key{
		Hash: r.Hash, KeyName: r.KeyName, Alias: r.Alias, UserID: r.UserID, TeamID: r.TeamID, Models: models, AllowedRoutes: routes,
		MaxBudget: r.MaxBudget, BudgetDuration: r.BudgetDuration, BudgetResetAt: goTimePtr(r.BudgetResetAt),
		Spend: r.Spend, TPMLimit: r.TPMLimit, RPMLimit: r.RPMLimit, Blocked: r.Blocked,
		ExpiresAt: goTimePtr(r.ExpiresAt), KeyType: r.KeyType, Metadata: md, CreatedBy: r.CreatedBy,
		CreatedAt: goTime(r.CreatedAt), UpdatedAt: goTime(r.UpdatedAt), LastActive: goTimePtr(r.LastActive),
	}, nil
}

// CreateKey inserts k; ErrConflict on a duplicate hash or alias.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	if k.Hash == "" {
		return errors.New("gormstore: create key: empty hash")
	}
	row, err := keyToRow(*k)
	if err != nil {
		return fmt.Errorf("gormstore: create key: %w", err)
	}
	err = s.txn(ctx, func(tx *gorm.DB) error {
		if err := holdParents(tx, k.UserID, k.TeamID); err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("gormstore: create key: %w", translate(err))
	}
	k.CreatedAt, k.UpdatedAt = row.CreatedAt, row.UpdatedAt
	k.BudgetResetAt, k.ExpiresAt, k.LastActive = row.BudgetResetAt, row.ExpiresAt, row.LastActive
	return nil
}

func (s *Store) getKeyWhere(ctx context.Context, what, query string, args ...any) (store.Key, error) {
	var row keyRow
	if err := s.read(ctx).Where(query, args...).Take(&row).Error; err != nil {
		return store.Key{}, fmt.Errorf("gormstore: get key %s: %w", what, translate(err))
	}
	k, err := rowToKey(row)
	if err != nil {
		return store.Key{}, fmt.Errorf("gormstore: get key %s: %w", what, err)
	}
	return k, nil
}

// GetKey returns the key with hash.
func (s *Store) GetKey(ctx context.Context, hash string) (store.Key, error) {
	return s.getKeyWhere(ctx, "by hash", "hash = ?", hash)
}

// GetKeyByAlias returns the key of userID named alias; an empty alias
// matches none.
func (s *Store) GetKeyByAlias(ctx context.Context, userID, alias string) (store.Key, error) {
	if alias == "" {
		return store.Key{}, fmt.Errorf("gormstore: get key by alias: empty alias: %w", store.ErrNotFound)
	}
	return s.getKeyWhere(ctx, fmt.Sprintf("by alias %q", alias), "user_id = ? AND alias = ?", userID, alias)
}

// UpdateKey locks the key, applies fn and writes it back; the hash cannot
// change (ReplaceKeyHash does that). Errors from fn are returned unchanged.
func (s *Store) UpdateKey(ctx context.Context, hash string, fn func(*store.Key) error) (store.Key, error) {
	return s.rewriteKey(ctx, "update key", hash, hash, fn)
}

// ReplaceKeyHash moves the key to newHash and applies fn, in one
// transaction (delete + insert, so the primary key never needs updating).
func (s *Store) ReplaceKeyHash(ctx context.Context, oldHash, newHash string, fn func(*store.Key) error) (store.Key, error) {
	if newHash == "" {
		return store.Key{}, errors.New("gormstore: replace key hash: empty new hash")
	}
	return s.rewriteKey(ctx, "replace key hash", oldHash, newHash, fn)
}

func (s *Store) rewriteKey(ctx context.Context, op, oldHash, newHash string, fn func(*store.Key) error) (store.Key, error) {
	var out store.Key
	var fnErr error
	err := s.txn(ctx, func(tx *gorm.DB) error {
		var row keyRow
		if err := forUpdate(tx).Where("hash = ?", oldHash).Take(&row).Error; err != nil {
			return err
		}
		k, err := rowToKey(row)
		if err != nil {
			return err
		}
		if fn != nil {
			if fnErr = fn(&k); fnErr != nil {
				return fnErr
			}
		}
		k.Hash = newHash
		newUser, newTeam := "", ""
		if k.UserID != row.UserID {
			newUser = k.UserID
		}
		if k.TeamID != row.TeamID {
			newTeam = k.TeamID
		}
		if err := holdParents(tx, newUser, newTeam); err != nil {
			return err
		}
		if row, err = keyToRow(k); err != nil {
			return err
		}
		if oldHash == newHash {
			err = tx.Select("*").Save(&row).Error
		} else if err = tx.Where("hash = ?", oldHash).Delete(&keyRow{}).Error; err == nil {
			err = tx.Create(&row).Error
		}
		if err != nil {
			return err
		}
		out, err = rowToKey(row)
		return err
	})
	if fnErr != nil {
		return store.Key{}, fnErr
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("gormstore: %s: %w", op, translate(err))
	}
	return out, nil
}

// DeleteKey removes the key; its spend logs stay.
func (s *Store) DeleteKey(ctx context.Context, hash string) error {
	if err := notFoundIfNone(s.conn(ctx).Where("hash = ?", hash).Delete(&keyRow{})); err != nil {
		return fmt.Errorf("gormstore: delete key: %w", err)
	}
	return nil
}

// ListKeys returns one page ordered by (created_at, hash) and the total.
func (s *Store) ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, int64, error) {
	scope := func(q *gorm.DB) *gorm.DB {
		if f.UserID != "" {
			q = q.Where("user_id = ?", f.UserID)
		}
		if f.TeamID != "" {
			q = q.Where("team_id = ?", f.TeamID)
		}
		if f.KeyHash != "" {
			q = q.Where("hash = ?", f.KeyHash)
		}
		if f.KeyAlias != "" {
			q = q.Where("alias = ?", f.KeyAlias)
		}
		if f.KeyType != "" {
			q = q.Where("key_type = ?", f.KeyType)
		}
		if f.Owner != "" {
			q = s.ownerOrEmail(q, "user_id", f.Owner)
		}
		return q
	}
	rows, total, err := list(ctx, s, &keyRow{}, scope, orderSQL(f.Order, keyOrders(), "hash", "created_at, hash"), f.Page)
	if err != nil {
		return nil, 0, fmt.Errorf("gormstore: list keys: %w", err)
	}
	out := make([]store.Key, 0, len(rows))
	for _, r := range rows {
		k, err := rowToKey(r)
		if err != nil {
			return nil, 0, fmt.Errorf("gormstore: list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, total, nil
}

// keyOrders are the sortable key columns (store.KeyFilter.Order).
func keyOrders() map[string][2]string {
	return map[string][2]string{
		store.OrderCreated:  {"", "created_at"},
		store.OrderAlias:    {"CASE WHEN alias = '' THEN 1 ELSE 0 END", "lower(alias)"},
		store.OrderSpend:    {"", "spend"},
		store.OrderLastUsed: {"CASE WHEN last_active IS NULL THEN 1 ELSE 0 END", "last_active"},
	}
}

// TouchKeys writes last-active times in one transaction. A time never
// moves backwards, so replicas flushing out of order do no harm. Hashes
// are visited in sorted order so concurrent batches lock rows in the same
// order and cannot deadlock.
func (s *Store) TouchKeys(ctx context.Context, lastActive map[string]time.Time) error {
	if len(lastActive) == 0 {
		return nil
	}
	hashes := make([]string, 0, len(lastActive))
	for h := range lastActive {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	err := s.txn(ctx, func(tx *gorm.DB) error {
		for _, h := range hashes {
			at := dbTime(lastActive[h])
			err := tx.Model(&keyRow{}).
				Where("hash = ? AND (last_active IS NULL OR last_active < ?)", h, at).
				UpdateColumn("last_active", at).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gormstore: touch keys: %w", translate(err))
	}
	return nil
}
