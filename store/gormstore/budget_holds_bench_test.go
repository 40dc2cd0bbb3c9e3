package gormstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil/dbtest"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/gormstore"
)

// BenchmarkSharedHold is what sharing a forwarded call's reservation
// costs the database (bench/README.md, "Budgets across replicas"): take
// a hold on a key's, its owner's and its team's budgets, settle it, and
// record the call's spend, which ends the hold. "parallel" runs eight
// callers on one key at once: they queue on the budgets' lock.
func BenchmarkSharedHold(b *testing.B) {
	for _, db := range []struct {
		name string
		o    func(b *testing.B) gormstore.Options
	}{
		{"postgres", func(b *testing.B) gormstore.Options { return gormstore.Options{DatabaseURL: dbtest.PostgresURL(b)} }},
		{"sqlite", func(b *testing.B) gormstore.Options { return gormstore.Options{SQLitePath: dbtest.SQLitePath(b)} }},
	} {
		b.Run(db.name, func(b *testing.B) {
			s, err := gormstore.Open(context.Background(), db.o(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			now := time.Now()
			if err := s.CreateUser(ctx, &store.User{ID: "u", Role: "internal_user", CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateTeam(ctx, &store.Team{ID: "t", CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateKey(ctx, &store.Key{Hash: "k", KeyName: "sk-...", UserID: "u", TeamID: "t", CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
			refs := []store.BudgetRef{{ID: "key:k", Scope: "key", KeyHash: "k"}, {ID: "user:u", Scope: "user", UserID: "u"},
				{ID: "team:t", Scope: "team", TeamID: "t"}}
			admit := func([]store.BudgetFigure) error { return nil }
			var seq atomic.Int64 // hold and request ids, unique across the runs
			// steps adds up each step's time: the hold before the call is
			// sent, its settling at the answer's end, the spend write
			// (off the request's path, batched in production).
			call := func(steps *[3]time.Duration) error {
				id := fmt.Sprint("c", seq.Add(1))
				at := time.Now()
				if err := s.HoldBudgets(ctx, store.BudgetHold{ID: id, Amount: 0.01, Budgets: refs, At: at, Expires: at.Add(time.Minute)}, admit); err != nil {
					return err
				}
				held := time.Now()
				if err := s.SettleBudgetHold(ctx, id, 0.005); err != nil {
					return err
				}
				settled := time.Now()
				_, err := s.RecordSpendBatch(ctx, []store.SpendEntry{{RequestID: id, KeyHash: "k", UserID: "u", TeamID: "t", Spend: 0.005, CreatedAt: at, HoldID: id}})
				if steps != nil {
					steps[0] += held.Sub(at)
					steps[1] += settled.Sub(held)
					steps[2] += time.Since(settled)
				}
				return err
			}
			b.Run("serial", func(b *testing.B) {
				var steps [3]time.Duration
				for range b.N {
					if err := call(&steps); err != nil {
						b.Fatal(err)
					}
				}
				for i, name := range []string{"hold-ns/op", "settle-ns/op", "record-ns/op"} {
					b.ReportMetric(float64(steps[i].Nanoseconds())/float64(b.N), name)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(4) // 8 callers on 2 cores
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call(nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
