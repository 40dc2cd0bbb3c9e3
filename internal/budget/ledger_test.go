package budget_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/budget"
)

func keyBudget(spend, max float64) []auth.Budget {
	return []auth.Budget{{Scope: "key", ID: "key:k", Spend: spend, Max: max}}
}

// TestConcurrentReservationsStayWithinTheBudget: fifty concurrent calls
// on a budget worth four (estimate = real cost) admit exactly four.
func TestConcurrentReservationsStayWithinTheBudget(t *testing.T) {
	l := budget.NewLedger()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var holds []*budget.Hold
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if h, err := l.Reserve(keyBudget(0, 4), 1, l.Epoch()); err == nil {
				mu.Lock()
				holds = append(holds, h)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, holds, 4)
	require.InDelta(t, 4, l.Held("key:k"), 1e-9)
	for _, h := range holds {
		h.Settle(0.5)
	}
	require.InDelta(t, 2, l.Held("key:k"), 1e-9, "settled calls stay held until released")
	for _, h := range holds {
		h.Release()
		h.Release() // twice is harmless
	}
	require.Zero(t, l.Held("key:k"))
}

// TestLoneCallPassesAsLiteLLMWould: with nothing in flight a call passes
// while the budget is not used up, even if its estimate is larger than
// what is left; a second one concurrently does not.
func TestLoneCallPassesAsLiteLLMWould(t *testing.T) {
	l := budget.NewLedger()
	h, err := l.Reserve(keyBudget(3.9, 4), 5, l.Epoch())
	require.NoError(t, err)
	_, err = l.Reserve(keyBudget(3.9, 4), 0.01, l.Epoch())
	require.Error(t, err)
	h.Release()
	_, err = l.Reserve(keyBudget(4, 4), 0.01, l.Epoch())
	require.Error(t, err, "a used-up budget takes nothing")
	_, err = l.Reserve([]auth.Budget{{Scope: "key", ID: "key:k", Spend: 9, Max: 4, ResetDue: true}}, 1, l.Epoch())
	require.NoError(t, err, "a budget whose period ended does not block")
}

// TestEveryBudgetMustTakeTheCall: the key has room but the team does not.
func TestEveryBudgetMustTakeTheCall(t *testing.T) {
	l := budget.NewLedger()
	team := auth.Budget{Scope: "team", ID: "team:t", Spend: 0, Max: 2}
	a, err := l.Reserve([]auth.Budget{{Scope: "key", ID: "key:a", Max: 100}, team}, 1.5, l.Epoch())
	require.NoError(t, err)
	_, err = l.Reserve([]auth.Budget{{Scope: "key", ID: "key:b", Max: 100}, team}, 1, l.Epoch())
	require.Error(t, err)
	require.Zero(t, l.Held("key:b"), "a refused call holds nothing")
	a.Release()
}

// TestFinishedCallsCountAsSpentNotInFlight: a sequential client whose
// calls are each estimated above what is left still gets a call while the
// budget is not used up, counting the finished calls not yet recorded.
func TestFinishedCallsCountAsSpentNotInFlight(t *testing.T) {
	l := budget.NewLedger()
	served := 0
	var holds []*budget.Hold
	for range 6 {
		h, err := l.Reserve(keyBudget(0, 0.4), 1.0, l.Epoch()) // estimate far above the real 0.1
		if err != nil {
			continue
		}
		served++
		h.Settle(0.1) // finished; its spend is not recorded yet
		holds = append(holds, h)
	}
	require.Equal(t, 4, served)
	require.InDelta(t, 0.4, l.Held("key:k"), 1e-9)
	for _, h := range holds {
		h.Release()
	}
	require.Zero(t, l.Held("key:k"))
}

// TestFiguresReadBeforeAReleaseStillCountIt: a caller that read the
// budget figures before a finished call's spend reached them (it
// authenticated just before the recording) must not see that spend
// vanish from both the figures and the ledger when the hold is released.
func TestFiguresReadBeforeAReleaseStillCountIt(t *testing.T) {
	l := budget.NewLedger()
	h, err := l.Reserve(keyBudget(0, 4), 2, l.Epoch())
	require.NoError(t, err)
	h.Settle(4) // the call used the whole budget

	since := l.Epoch()
	stale := keyBudget(0, 4) // read now: the spend of 4 is not in it yet
	h.Release()              // recorded: the cached figures now say 4

	_, err = l.Reserve(stale, 1, since)
	require.Error(t, err, "figures read before the release must count the released cost")
	_, err = l.Reserve(keyBudget(4, 4), 1, l.Epoch())
	require.Error(t, err, "fresh figures carry the spend themselves")
	_, err = l.Reserve(keyBudget(0, 4), 1, l.Epoch())
	require.NoError(t, err, "a release is not counted twice for figures read after it")
}

// TestForgottenReleasesMakeOldFiguresStale: past what the ledger
// remembers, figures read before the forgetting are refused as stale (the
// caller reads them again) rather than silently missing a release.
func TestForgottenReleasesMakeOldFiguresStale(t *testing.T) {
	l := budget.NewLedger()
	old := l.Epoch()
	for range 1<<16 + 1 {
		h, err := l.Reserve(keyBudget(0, 1e9), 1, l.Epoch())
		require.NoError(t, err)
		h.Settle(1)
		h.Release()
	}
	_, err := l.Reserve(keyBudget(0, 1e9), 1, old)
	require.ErrorIs(t, err, budget.ErrStale)
	_, err = l.Reserve(keyBudget(0, 1e9), 1, l.Epoch())
	require.NoError(t, err)
}
