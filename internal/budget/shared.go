package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
	"github.com/keygate/keygate/store"
)

// Default lifetimes of shared holds. A replica renews its holds every
// RenewEvery for as long as their calls run or their spend waits to be
// recorded; a hold not renewed (its replica died, or lost the database)
// ends HoldLifetime after its last renewal.
const (
	HoldLifetime = 2 * time.Minute
	RenewEvery   = 30 * time.Second
)

// Bounds on taking holds: at most holdSlots at once per instance, and a
// call waits at most holdWait for a slot (past it the hold is not shared:
// ErrUnshared).
const (
	holdSlots = 4
	holdWait  = 2 * time.Second
)

// ErrUnshared: the hold could not be taken in the database (it is
// unreachable, or too slow); only this instance's Ledger holds the call.
var ErrUnshared = errors.New("budget: reservation not shared with other replicas")

// Shared takes reservations in the database (store.BudgetHolds), where
// every replica sees every other's: with it, N replicas together keep the
// bound one instance keeps alone. It stands behind the Ledger, which
// refuses what this instance alone already knows cannot fit without a
// database round trip.
type Shared struct {
	holds store.BudgetHolds
	o     SharedOptions
	now   func() time.Time

	mu   sync.Mutex
	live map[string]struct{} // holds to renew: calls running or waiting to be recorded

	// slots bounds the holds taken at once: holders of one budget queue
	// on its database lock, and a burst must wait here, not on pooled
	// connections other requests need.
	slots chan struct{}

	releasing sync.WaitGroup // deletions of holds in progress
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

// SharedOptions configures NewShared.
type SharedOptions struct {
	Logger *slog.Logger
	// Lifetime and RenewEvery default to HoldLifetime and RenewEvery.
	Lifetime   time.Duration
	RenewEvery time.Duration
}

// NewShared returns a Shared on holds and starts renewing its holds; stop
// it with Close.
func NewShared(holds store.BudgetHolds, o SharedOptions) *Shared {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lifetime <= 0 {
		o.Lifetime = HoldLifetime
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = RenewEvery
	}
	s := &Shared{holds: holds, o: o, now: time.Now, live: map[string]struct{}{},
		slots: make(chan struct{}, holdSlots), stop: make(chan struct{}), done: make(chan struct{})}
	go s.renewLoop()
	return s
}

// Close stops renewing and waits for deletions in progress. Holds still
// live expire Lifetime after their last renewal.
func (s *Shared) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.releasing.Wait()
}

// Take reserves est in the database against the budgets of pr that h
// holds on this instance, or refuses (429 budget_exceeded) under the same
// rule as Ledger.Reserve, counting every replica's holds and the spend
// recorded in the database. An error wrapping ErrUnshared means the
// database could not be asked; h is unchanged then.
func (s *Shared) Take(ctx context.Context, h *Hold, pr auth.Principal, est float64) error {
	if h == nil || pr.Access == nil || est <= 0 {
		// Nothing to hold: a call that costs nothing (an unpriced model)
		// spends nothing, and a used-up budget refuses it before this.
		return nil
	}
	var budgets []auth.Budget
	var refs []store.BudgetRef
	for _, b := range pr.Access.Budgets {
		if b.ResetDue || b.ID == "" {
			continue
		}
		ref := store.BudgetRef{ID: b.ID, Scope: b.Scope}
		switch b.Scope {
		case "key":
			ref.KeyHash = pr.KeyHash
		case "user":
			ref.UserID = pr.UserID
		case "team":
			ref.TeamID = pr.KeyTeamID
		case "team member":
			ref.TeamID, ref.UserID = pr.KeyTeamID, pr.UserID
		default:
			continue
		}
		budgets, refs = append(budgets, b), append(refs, ref)
	}
	if len(refs) == 0 {
		return nil
	}
	wait := time.NewTimer(holdWait)
	defer wait.Stop()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-wait.C:
		return fmt.Errorf("%w: %d reservations were being taken for %s", ErrUnshared, holdSlots, holdWait)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnshared, ctx.Err())
	}
	now := s.now()
	id := uuid.NewString()
	var refusal error
	err := s.holds.HoldBudgets(ctx, store.BudgetHold{ID: id, Amount: est, Budgets: refs, At: now, Expires: now.Add(s.o.Lifetime)},
		func(figures []store.BudgetFigure) error {
			for i, f := range figures {
				b := budgets[i]
				spent := b
				spent.Spend = f.Spend + f.Settled
				if spent.Spend+f.Held+est <= b.Max || (f.Held == 0 && !access.Exhausted(spent)) {
					continue
				}
				e := apperr.Forbidden("Budget exceeded: the %s has %.4f left of its %.4f budget and %.4f is reserved by calls in progress; this call may cost up to %.4f.",
					b.Scope, max(b.Max-f.Spend, 0), b.Max, f.Held+f.Settled, est)
				e.Kind = apperr.KindBudgetExceeded
				refusal = e
				return e
			}
			return nil
		})
	if refusal != nil {
		return refusal
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnshared, err)
	}
	s.mu.Lock()
	s.live[id] = struct{}{}
	s.mu.Unlock()
	h.l.mu.Lock()
	h.shared, h.sharedID = s, id
	h.l.mu.Unlock()
	return nil
}

// settle replaces the hold's estimate by the call's real cost in the
// database, before the answer's end reaches the client: a call sent next,
// to any replica, sees the cost as spent rather than as a call in flight
// (which would refuse it the lone-call pass). Should the database not
// answer, the estimate stays held, in flight, until the spend is recorded.
func (s *Shared) settle(id string, real float64) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := s.holds.SettleBudgetHold(ctx, id, real); err != nil {
		s.o.Logger.Warn("budget: could not settle a reservation; its estimate stays held until the spend is recorded", "hold", id, "err", err)
	}
}

// settleTimeout bounds settle, which the end of an answer waits for.
const settleTimeout = 2 * time.Second

// end stops renewing a hold; drop also deletes it now (the call ends
// unbilled). A recorded call's hold was deleted with its spend.
func (s *Shared) end(id string, drop bool) {
	s.mu.Lock()
	delete(s.live, id)
	s.mu.Unlock()
	if !drop {
		return
	}
	// Off the request's path: the answer is already written, and a hold
	// that cannot be deleted now expires by itself.
	s.releasing.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.holds.ReleaseBudgetHolds(ctx, id); err != nil {
			s.o.Logger.Warn("budget: could not release a reservation; it expires by itself", "hold", id, "within", s.o.Lifetime, "err", err)
		}
	})
}

// renewLoop keeps this instance's holds from expiring, and forgets the
// expired holds of instances that died.
func (s *Shared) renewLoop() {
	defer close(s.done)
	t := time.NewTicker(s.o.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ids := make([]string, 0, len(s.live))
		for id := range s.live {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		now := s.now()
		ctx, cancel := context.WithTimeout(context.Background(), s.o.RenewEvery)
		if err := s.holds.RenewBudgetHolds(ctx, now, now.Add(s.o.Lifetime), ids...); err != nil {
			s.o.Logger.Warn("budget: could not renew reservations; other replicas stop counting them when they expire",
				"holds", len(ids), "expire_within", s.o.Lifetime, "err", err)
		}
		cancel()
	}
}

// Live is how many holds this instance is renewing (tests, metrics).
func (s *Shared) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
