package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// holdRefs are the four budgets of key "k" (owner "u", team "t") in
// spendFixture, plus a budget whose row does not exist.
func holdRefs() []store.BudgetRef {
	return []store.BudgetRef{
		{ID: "key:k", Scope: "key", KeyHash: "k"},
		{ID: "user:u", Scope: "user", UserID: "u"},
		{ID: "team:t", Scope: "team", TeamID: "t"},
		{ID: "member:t:u", Scope: "team member", TeamID: "t", UserID: "u"},
	}
}

// figuresOf takes no hold: it reads the figures HoldBudgets would see.
func figuresOf(t *testing.T, s store.Store, refs []store.BudgetRef, minute int) []store.BudgetFigure {
	t.Helper()
	var got []store.BudgetFigure
	errLook := errors.New("only looking")
	err := s.HoldBudgets(t.Context(), store.BudgetHold{ID: "look", Amount: 1, Budgets: refs, At: at(minute), Expires: at(minute + 1)},
		func(f []store.BudgetFigure) error { got = f; return errLook })
	require.ErrorIs(t, err, errLook, "admit's error comes back")
	return got
}

// testBudgetHoldFigures: each scope reads its own row's spend, a missing
// row reads 0, and holds count per budget until they expire.
func testBudgetHoldFigures(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "r1", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 0.5, CreatedAt: at(0)}))
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "r2", KeyHash: "k-other", UserID: "other", TeamID: "t", Spend: 2, CreatedAt: at(0)}))
	refs := append(holdRefs(), store.BudgetRef{ID: "key:gone", Scope: "key", KeyHash: "gone"})
	require.Equal(t, []store.BudgetFigure{{Spend: 0.5}, {Spend: 0.5}, {Spend: 2.5}, {Spend: 0.5}, {}}, figuresOf(t, s, refs, 10))

	admitAll := func([]store.BudgetFigure) error { return nil }
	require.NoError(t, s.HoldBudgets(ctx, store.BudgetHold{ID: "h1", Amount: 0.25, Budgets: holdRefs(), At: at(10), Expires: at(15)}, admitAll))
	require.NoError(t, s.HoldBudgets(ctx, store.BudgetHold{ID: "h2", Amount: 4, Budgets: holdRefs()[2:3], At: at(10), Expires: at(12)}, admitAll))
	require.Equal(t, []store.BudgetFigure{{Spend: 0.5, Held: 0.25}, {Spend: 0.5, Held: 0.25}, {Spend: 2.5, Held: 4.25}, {Spend: 0.5, Held: 0.25}, {}}, figuresOf(t, s, refs, 11))
	// h2 expires at minute 12; h1 is renewed past its expiry.
	require.NoError(t, s.RenewBudgetHolds(ctx, at(11), at(20), "h1"))
	require.Equal(t, []store.BudgetFigure{{Spend: 0.5, Held: 0.25}, {Spend: 0.5, Held: 0.25}, {Spend: 2.5, Held: 0.25}, {Spend: 0.5, Held: 0.25}, {}}, figuresOf(t, s, refs, 16))
	// Renewing also forgets what expired: h2 is gone even for a reader
	// of an earlier instant.
	require.NoError(t, s.RenewBudgetHolds(ctx, at(13), at(20)))
	require.Equal(t, []store.BudgetFigure{{Spend: 0.5, Held: 0.25}, {Spend: 0.5, Held: 0.25}, {Spend: 2.5, Held: 0.25}, {Spend: 0.5, Held: 0.25}, {}}, figuresOf(t, s, refs, 11))
	require.NoError(t, s.ReleaseBudgetHolds(ctx, "h1", "never-held"))
	require.Equal(t, []store.BudgetFigure{{Spend: 0.5}, {Spend: 0.5}, {Spend: 2.5}, {Spend: 0.5}, {}}, figuresOf(t, s, refs, 11))

	// A refused hold stores nothing; a hold needs an id and a budget.
	errNo := errors.New("no")
	require.ErrorIs(t, s.HoldBudgets(ctx, store.BudgetHold{ID: "h3", Amount: 1, Budgets: holdRefs(), At: at(11), Expires: at(20)},
		func([]store.BudgetFigure) error { return errNo }), errNo)
	require.Equal(t, store.BudgetFigure{Spend: 0.5}, figuresOf(t, s, holdRefs(), 11)[0])
	require.Error(t, s.HoldBudgets(ctx, store.BudgetHold{Amount: 1, Budgets: holdRefs(), At: at(11), Expires: at(20)}, admitAll))
	require.Error(t, s.HoldBudgets(ctx, store.BudgetHold{ID: "h4", Amount: 1, At: at(11), Expires: at(20)}, admitAll))
}

// testBudgetHoldEndsWithSpend: recording a call's spend deletes its hold
// in the same transaction, by RecordSpend and by RecordSpendBatch, and a
// replayed batch deletes a hold taken again meanwhile.
func testBudgetHoldEndsWithSpend(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	admitAll := func([]store.BudgetFigure) error { return nil }
	hold := func(id string, amount float64) {
		require.NoError(t, s.HoldBudgets(ctx, store.BudgetHold{ID: id, Amount: amount, Budgets: holdRefs(), At: at(0), Expires: at(60)}, admitAll))
	}
	hold("a", 0.5)
	hold("b", 0.25)
	hold("c", 0.125)
	require.Equal(t, store.BudgetFigure{Held: 0.875}, figuresOf(t, s, holdRefs(), 1)[0])
	// A finished call's hold holds its real cost, as spent, not in flight.
	require.NoError(t, s.SettleBudgetHold(ctx, "a", 0.75))
	require.Equal(t, store.BudgetFigure{Held: 0.375, Settled: 0.75}, figuresOf(t, s, holdRefs(), 1)[0])
	require.NoError(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "ra", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 0.5, CreatedAt: at(1), HoldID: "a"}))
	require.Equal(t, store.BudgetFigure{Spend: 0.5, Held: 0.375}, figuresOf(t, s, holdRefs(), 1)[0])
	batch := []store.SpendEntry{{RequestID: "rb", KeyHash: "k", UserID: "u", TeamID: "t", Spend: 0.25, CreatedAt: at(1), HoldID: "b"}}
	_, err := s.RecordSpendBatch(ctx, batch)
	require.NoError(t, err)
	for _, f := range figuresOf(t, s, holdRefs(), 1) {
		require.Equal(t, store.BudgetFigure{Spend: 0.75, Held: 0.125}, f)
	}
	// A failed batch deletes no hold.
	_, err = s.RecordSpendBatch(ctx, []store.SpendEntry{{RequestID: "", HoldID: "c"}})
	require.Error(t, err)
	require.Equal(t, 0.125, figuresOf(t, s, holdRefs(), 1)[0].Held)
	// The replay of an entry already stored still ends its hold.
	hold("b", 0.25)
	done, err := s.RecordSpendBatch(ctx, batch)
	require.NoError(t, err)
	require.Empty(t, done, "already stored")
	require.Equal(t, store.BudgetFigure{Spend: 0.75, Held: 0.125}, figuresOf(t, s, holdRefs(), 1)[0])
}

// testBudgetHoldsConcurrent: concurrent holders of overlapping budget
// sets are serialised, so a rule "spend + held + amount within the
// budget" admits exactly what fits, and none deadlocks.
func testBudgetHoldsConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	refs := holdRefs()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every holder takes the team's budget and a different
			// subset of the others, in varying order.
			budgets := []store.BudgetRef{refs[(i+1)%4], refs[2], refs[i%4]}
			err := s.HoldBudgets(ctx, store.BudgetHold{ID: fmt.Sprint("c", i), Amount: 1, Budgets: budgets, At: at(0), Expires: at(60)},
				func(f []store.BudgetFigure) error {
					for _, x := range f {
						if x.Spend+x.Held+1 > 10 {
							return errNoRoom
						}
					}
					return nil
				})
			if err == nil {
				admitted.Add(1)
			} else if !errors.Is(err, errNoRoom) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 10, admitted.Load(), "the team's budget of 10 admits exactly 10 holds of 1")
	require.Equal(t, 10.0, figuresOf(t, s, refs, 1)[2].Held)
}

var errNoRoom = errors.New("no room")
