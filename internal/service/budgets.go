package service

import (
	"context"
	"fmt"
	"time"
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
	keys, users, err := s.store.ResetDueBudgets(ctx, s.Now(), next)
	if err != nil {
		return 0, fmt.Errorf("service: reset budgets: %w", err)
	}
	s.keysChanged(ctx, keys...)
	s.userChanged(ctx, users...)
	return len(keys) + len(users), nil
}
