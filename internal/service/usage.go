package service

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/store"
)

// RecordUsage records metered requests of the forwarding proxy — each
// entry with its key's, owner's, team's and membership's running totals —
// in one transaction (a group commit, idempotent by request id: see
// store.Spend.RecordSpendBatch), and in the same transaction announces the
// amounts to every replica, whose cached budget figures rise in place, so
// budgets bite at the next request without sending it to the database. It
// returns the entries stored. The caller authenticated the requests; this
// is not a user action and needs no principal.
func (s *Service) RecordUsage(ctx context.Context, es []store.SpendEntry) ([]store.SpendEntry, error) {
	var done []store.SpendEntry
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		var err error
		if done, err = tx.RecordSpendBatch(ctx, es); err != nil {
			return err
		}
		for _, e := range done {
			ch.Spend(auth.Spent{KeyHash: e.KeyHash, UserID: e.UserID, TeamID: e.TeamID, Amount: e.Spend})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("service: record usage: %w", err)
	}
	return done, nil
}
