package app

import (
	"context"
	"time"
)

// resetBudgets runs the budget-period job every interval on every replica;
// the store's reset is one transaction with row locks, so replicas racing
// reset each row once.
func (a *App) resetBudgets(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.svc.ResetDueBudgets(ctx); err != nil {
				a.log.Error("budget reset", "err", err)
			} else if n > 0 {
				a.log.Info("started new budget periods", "count", n)
			}
		}
	}
}
