package budget_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/internal/budget"
	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// replica is one instance's side of the budgets: its own ledger and its
// shared holds, on a store shared with the other replicas.
type replica struct {
	ledger *budget.Ledger
	shared *budget.Shared
}

const (
	testLifetime = 400 * time.Millisecond
	testRenew    = 100 * time.Millisecond
)

func newReplica(t *testing.T, st store.Store) *replica {
	t.Helper()
	s := budget.NewShared(st, budget.SharedOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Lifetime: testLifetime, RenewEvery: testRenew})
	t.Cleanup(s.Close)
	return &replica{ledger: budget.NewLedger(), shared: s}
}

// keyPrincipal is a key with a budget of max and nothing spent, as the
// authenticator would hand it over.
func keyPrincipal(max float64) auth.Principal {
	return auth.Principal{Method: auth.MethodAPIKey, KeyHash: "k", UserID: "u",
		Access: &auth.Access{Budgets: []auth.Budget{{Scope: "key", ID: "key:k", Max: max}}}}
}

// reserve takes a call's reservation on r as the forwarding proxy does:
// the replica's ledger first, then the database.
func (r *replica) reserve(t *testing.T, pr auth.Principal, est float64) (*budget.Hold, error) {
	t.Helper()
	h, err := r.ledger.Reserve(pr.Access.Budgets, est, r.ledger.Epoch())
	if err != nil {
		return nil, err
	}
	if err := r.shared.Take(context.Background(), h, pr, est); err != nil {
		h.Release()
		return nil, err
	}
	return h, nil
}

func requireRefused(t *testing.T, err error, msg string) {
	t.Helper()
	require.Error(t, err, msg)
	require.Equal(t, apperr.KindBudgetExceeded, apperr.KindOf(err), "%s: %v", msg, err)
}

// TestSharedHolds: a hold on one replica counts on every other, as an
// estimate while the call runs and as spent once settled; it ends when
// released, lives on while its replica renews it, and stops counting a
// lifetime after its replica stops (died).
func TestSharedHolds(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name string
		o    func(t *testing.T) gormstore.Options
	}{
		{"sqlite", func(t *testing.T) gormstore.Options { return gormstore.Options{SQLitePath: dbtest.SQLitePath(t)} }},
		{"postgres", func(t *testing.T) gormstore.Options { return gormstore.Options{DatabaseURL: dbtest.PostgresURL(t)} }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			st, err := gormstore.Open(t.Context(), db.o(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			now := time.Now()
			require.NoError(t, st.CreateUser(t.Context(), &store.User{ID: "u", Role: "internal_user", CreatedAt: now, UpdatedAt: now}))
			require.NoError(t, st.CreateKey(t.Context(), &store.Key{Hash: "k", KeyName: "sk-...", UserID: "u", CreatedAt: now, UpdatedAt: now}))
			a, b := newReplica(t, st), newReplica(t, st)
			pr := keyPrincipal(1)

			ha, err := a.reserve(t, pr, 0.6)
			require.NoError(t, err)
			require.NotEmpty(t, ha.SharedID())
			_, err = b.reserve(t, pr, 0.6)
			requireRefused(t, err, "B's ledger is empty, but A's hold is in the database")

			// Settled, A's call counts as spent, not in flight: a call
			// that fits beside it passes on B, one that does not fit
			// beside both is refused.
			ha.Settle(0.3)
			hb, err := b.reserve(t, pr, 0.6)
			require.NoError(t, err, "0.3 spent + 0.6 fits in 1")
			_, err = a.reserve(t, pr, 0.2)
			requireRefused(t, err, "0.3 spent + 0.6 in flight + 0.2")

			// B's call ends unbilled: its hold is deleted.
			hb.Release()
			require.Eventually(t, func() bool { h, err := a.reserve(t, pr, 0.6); return err == nil && release(h) }, 5*time.Second, 20*time.Millisecond,
				"B's released hold still counts")

			// A's holds live on while A renews them, past their lifetime.
			require.Eventually(t, func() bool { _, err := a.reserve(t, pr, 0.5); return err == nil }, 5*time.Second, 20*time.Millisecond,
				"the probe's released hold still counts")
			time.Sleep(3 * testLifetime)
			_, err = b.reserve(t, pr, 0.3)
			requireRefused(t, err, "A's holds (0.3 settled, 0.5 in flight), renewed, still count after their first lifetime")
			// A dies (stops renewing): within a lifetime its hold stops counting.
			a.shared.Close()
			start := time.Now()
			require.Eventually(t, func() bool { h, err := b.reserve(t, pr, 0.8); return err == nil && release(h) }, 5*time.Second, 20*time.Millisecond,
				"a dead replica's hold never expired")
			t.Logf("a dead replica's hold stopped counting %v after its renewals stopped (lifetime %v)", time.Since(start).Round(10*time.Millisecond), testLifetime)
		})
	}
}

func release(h *budget.Hold) bool { h.Release(); return true }
