// Package budget holds this instance's reservations against spend
// budgets. A forwarded LLM call reserves its estimated cost against every
// budget that applies (key, owner, team, member) before it is sent, and
// holds its real cost until the recorded spend is part of the cached
// budget figures; so concurrent calls cannot all pass a check that each,
// alone, would pass. Reservations are per instance: with N replicas a
// budget can be overshot by at most what N instances each admit (README,
// "Budgets and reservations").
package budget

import (
	"sync"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/access"
	"github.com/keygate/keygate/internal/apperr"
)

// Ledger tracks amounts held against budgets by ID (auth.Budget.ID).
type Ledger struct {
	mu   sync.Mutex
	held map[string]float64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{held: map[string]float64{}} }

// Hold is one call's reservation.
type Hold struct {
	l      *Ledger
	ids    []string
	amount float64
	done   bool
}

// Reserve holds est against every budget in budgets, or refuses (429
// budget_exceeded) when one cannot take it. A budget takes a call when
// spend + held + est stays within it — or, when nothing is held against it
// and it is not used up, when the call is the only one in flight: a budget
// never stops a lone call that LiteLLM would let through, and the most it
// can be overshot on this instance is that one call's real cost beyond its
// estimate. Budgets whose period has ended (reset pending) are skipped.
func (l *Ledger) Reserve(budgets []auth.Budget, est float64) (*Hold, error) {
	if est < 0 {
		est = 0
	}
	h := &Hold{l: l, amount: est}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range budgets {
		if b.ResetDue || b.ID == "" {
			continue
		}
		held := l.held[b.ID]
		fits := b.Spend+held+est <= b.Max || (held == 0 && !access.Exhausted(b))
		if !fits {
			e := apperr.Forbidden("Budget exceeded: the %s has %.4f left of its %.4f budget and %.4f is reserved by calls in progress; this call may cost up to %.4f.",
				b.Scope, max(b.Max-b.Spend, 0), b.Max, held, est)
			e.Kind = apperr.KindBudgetExceeded
			return nil, e
		}
		h.ids = append(h.ids, b.ID)
	}
	for _, id := range h.ids {
		l.held[id] += est
	}
	return h, nil
}

// Settle replaces the estimate by the call's real cost, which stays held
// until Release (the recorded spend is not yet in the cached figures).
func (h *Hold) Settle(real float64) {
	if h == nil {
		return
	}
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.done {
		return
	}
	for _, id := range h.ids {
		h.l.held[id] += real - h.amount
	}
	h.amount = real
}

// Release drops the hold: the call failed, or its spend is now counted in
// the budget figures. Calling it again does nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.done {
		return
	}
	h.done = true
	for _, id := range h.ids {
		if v := h.l.held[id] - h.amount; v > 1e-12 {
			h.l.held[id] = v
		} else {
			delete(h.l.held, id)
		}
	}
}

// Held returns what is held against a budget (tests, metrics).
func (l *Ledger) Held(id string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[id]
}
