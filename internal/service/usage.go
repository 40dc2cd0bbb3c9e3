package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/keygate/keygate/store"
)

// RecordUsage records metered requests of the forwarding proxy — each
// entry with its key's, owner's, team's and membership's running totals —
// in one transaction (a group commit, idempotent by request id: see
// store.Spend.RecordSpendBatch), then drops the cached answers of the keys
// and users whose spend moved, so budgets bite at the next request. It
// returns the entries stored. The caller authenticated the requests; this
// is not a user action and needs no principal.
func (s *Service) RecordUsage(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	done, err := s.store.RecordSpendBatch(ctx, es)
	if err != nil {
		return nil, fmt.Errorf("service: record usage: %w", err)
	}
	var keys, users []string
	for _, e := range done {
		if e.Spend == 0 {
			continue
		}
		if e.KeyHash != "" && !slices.Contains(keys, e.KeyHash) {
			keys = append(keys, e.KeyHash)
		}
		if e.UserID != "" && !slices.Contains(users, e.UserID) {
			users = append(users, e.UserID)
		}
	}
	s.keysChanged(ctx, keys...)
	s.userChanged(ctx, users...)
	return done, nil
}
