package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/store"
)

// testSpendHistory: imported history is listed like recorded spend but
// moves no running total, and a duplicate request id is a conflict.
func testSpendHistory(t *testing.T, s store.Store) {
	ctx := t.Context()
	spendFixture(t, s)
	e := store.SpendEntry{RequestID: "litellm-daily:1", KeyHash: "k", UserID: "u", TeamID: "t", Model: "gpt-4o",
		PromptTokens: 10, CompletionTokens: 5, Spend: 1.5, CreatedAt: at(1)}
	require.NoError(t, s.InsertSpendHistory(ctx, e))
	requireTotals(t, s, 0, 0, 0, 0)
	require.ErrorIs(t, s.InsertSpendHistory(ctx, e), store.ErrConflict)
	got, n, err := s.ListSpend(ctx, store.SpendFilter{UserID: "u"})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, e.Spend, got[0].Spend)
	require.True(t, got[0].CreatedAt.Equal(e.CreatedAt))
}
