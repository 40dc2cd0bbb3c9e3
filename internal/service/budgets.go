package service

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
)

// ResetDueBudgets starts a new budget period for every key, user and team
// whose budget_duration has elapsed: spend goes back to zero and the next
// reset moves one period on. Cached answers for the affected keys and
// users are dropped, so a key blocked by its budget works again at once.
func (s *Service) ResetDueBudgets(ctx context.Context) (int, error) {
	next := func(duration string, from time.Time) time.Time {
		d, err := ParseDuration(duration)
		if err != nil {
			return time.Time{}
		}
		return from.Add(d)
	}
	var r store.BudgetResets
	err := s.tx(ctx, func(tx store.Store, ch *Changes) error {
		var err error
		if r, err = tx.ResetDueBudgets(ctx, s.Now(), next); err != nil {
			return err
		}
		ch.Key(r.KeyHashes...)
		ch.User(r.UserIDs...)
		ch.Team(r.TeamIDs...) // memberships reset with their team
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("service: reset budgets: %w", err)
	}
	return len(r.KeyHashes) + len(r.UserIDs) + len(r.TeamIDs), nil
}
