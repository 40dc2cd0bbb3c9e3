package gormstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/store"
)

// InsertSpendHistory inserts e without touching any running total: the
// totals of imported keys, users and teams already include it.
func (s *Store) InsertSpendHistory(ctx context.Context, e store.SpendEntry) error {
	if e.RequestID == "" {
		return errors.New("gormstore: insert spend history: empty request id")
	}
	row := spendToRow(e)
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("gormstore: insert spend history %q: %w", e.RequestID, translate(err))
	}
	return nil
}
